"""Mail that could not be parsed, kept aside (raw bytes and SMTP envelope) for replay."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Kept:
    """One mail kept aside: its bytes and how it was delivered."""

    path: Path
    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def keep_aside(
    directory: Path, raw: bytes, mail_from: str, rcpt_tos: list[str], now: datetime
) -> Path:
    """Write `raw` as `<timestamp>-<hash>.eml` (0600), its envelope beside it; blocking.

    The same bytes kept before are not written again: a replay that still fails keeps
    the one file it came from.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(raw).hexdigest()[:32]
    if found := sorted(directory.glob(f"*-{digest}.eml")):
        return found[0]
    path = directory / f"{now:%Y%m%dT%H%M%S}-{digest}.eml"
    meta = {"mail_from": mail_from, "rcpt_tos": rcpt_tos}
    _write(path.with_suffix(".json"), json.dumps(meta).encode())
    _write(path, raw)
    return path


def read_kept(path: Path) -> Kept:
    """A kept mail and its envelope (an `.eml` without one: From and To are used later)."""
    raw = path.read_bytes()
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return Kept(path, raw, str(meta.get("mail_from", "")), tuple(meta.get("rcpt_tos", ())))


def forget(path: Path) -> None:
    """Remove a kept mail once it was taken."""
    path.unlink(missing_ok=True)
    path.with_suffix(".json").unlink(missing_ok=True)


def kept_files(directory: Path) -> list[Path]:
    """The mails kept aside, oldest first."""
    return sorted(directory.glob("*.eml")) if directory.exists() else []
