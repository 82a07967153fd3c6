"""The attachment store interface, its local-disk backend and the URL that picks a backend."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from intake_hub.config import ConfigError

URL_VARIABLE = "INTAKE_HUB_ATTACHMENTS_URL"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_TEMP_SUFFIX = ".part"


class MissingAttachment(LookupError):
    """get() of a digest that is not stored."""


class StoreUnavailable(OSError):
    """Transient trouble (disk full, object store down): the caller answers 503."""


class AttachmentStore(Protocol):
    """Content-addressed bytes: the key of every blob is its SHA-256 hex digest."""

    async def put(self, data: bytes) -> str:
        """Store `data` durably and return its digest; the same bytes again are a no-op."""
        ...

    async def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`, or MissingAttachment."""
        ...

    async def delete(self, digest: str) -> None:
        """Remove `digest`; an absent digest is fine."""
        ...

    def digests(self) -> AsyncIterator[tuple[str, datetime]]:
        """Every stored digest with the UTC time it was last put, for the orphan sweep."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


def digest_of(data: bytes) -> str:
    """The SHA-256 hex digest that names `data` in every store."""
    return hashlib.sha256(data).hexdigest()


def checked_digest(digest: str) -> str:
    """`digest` itself when it is 64 lowercase hex characters, else ValueError."""
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise ValueError(f"not a SHA-256 hex digest: {repr(digest)[:80]}")
    return digest


class FileStore:
    """Attachments as files under `root`, at root/ab/cd/<digest>, readable by this user only."""

    def __init__(self, root: Path) -> None:
        """Keep attachments under `root`, created on the first put."""
        self.root = root

    def path(self, digest: str) -> Path:
        """Where `digest` lives; the digest is validated before any path is built."""
        digest = checked_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    async def put(self, data: bytes) -> str:
        """Write `data` to a temp file, fsync, rename into place and fsync the directory."""
        digest = digest_of(data)
        try:
            await asyncio.to_thread(self._put, digest, data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot store attachment {digest}: {exc.strerror}") from exc
        return digest

    def _put(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        try:
            # Refresh the store time so an orphan sweep with a grace period spares a blob
            # that a new upload is about to reference.
            os.utime(target)
            return
        except FileNotFoundError:
            pass
        created = _make_dirs(target.parent)
        temp = target.with_name(f".{digest}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        for directory in created:
            _fsync_dir(directory.parent)

    async def get(self, digest: str) -> bytes:
        """The stored bytes of `digest`."""
        path = self.path(digest)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise MissingAttachment(digest) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read attachment {digest}: {exc.strerror}") from exc

    async def delete(self, digest: str) -> None:
        """Remove the file of `digest`, if there is one."""
        path = self.path(digest)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete attachment {digest}: {exc.strerror}") from exc

    async def digests(self) -> AsyncIterator[tuple[str, datetime]]:
        """Every stored digest with its file's modification time, one shard at a time."""
        shards = await asyncio.to_thread(_subdirs, self.root)
        for shard in shards:
            for digest, stamp in await asyncio.to_thread(_list_shard, shard):
                yield digest, stamp

    async def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""


def _make_dirs(directory: Path) -> list[Path]:
    """Create `directory` and missing parents with mode 0700; the ones created, top first."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        # mkdir's mode passes through the umask; the store must not be group-readable.
        path.chmod(0o700)
        created.append(path)
    return created


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _subdirs(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and len(p.name) == 2)
    except FileNotFoundError:
        return []


def _list_shard(shard: Path) -> list[tuple[str, datetime]]:
    found: list[tuple[str, datetime]] = []
    for sub in _subdirs(shard):
        with os.scandir(sub) as entries:
            for entry in entries:
                if _DIGEST.fullmatch(entry.name) is None or not entry.is_file():
                    continue
                try:
                    mtime = entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                found.append((entry.name, datetime.fromtimestamp(mtime, UTC)))
    return found


def open_store(url: str | None, home: Path) -> AttachmentStore:
    """The store named by INTAKE_HUB_ATTACHMENTS_URL: unset, file:///abs/path or s3://bucket/prefix."""
    if not url:
        return FileStore(home / "attachments")
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        if parts.query or parts.fragment:
            raise ConfigError(f"{URL_VARIABLE}: a file:// URL takes no query or fragment")
        return FileStore(Path(parts.path))
    if parts.scheme == "s3" and parts.netloc and not parts.fragment:
        query = parse_qs(parts.query, strict_parsing=False)
        style = query.pop("addressing_style", [None])[-1]
        if query or style not in (None, "virtual", "path"):
            raise ConfigError(
                f"{URL_VARIABLE}: an s3:// URL takes only ?addressing_style=virtual|path"
            )
        # boto3 takes a noticeable time to import; only S3 deployments pay for it.
        from intake_hub.attachments.s3 import S3Store

        return S3Store(parts.netloc, parts.path.strip("/"), addressing_style=style)
    shown = f"{parts.scheme}://..." if parts.scheme else "a value"
    raise ConfigError(
        f"{URL_VARIABLE} is {shown} but must be file:///absolute/path or s3://bucket/prefix"
    )
