"""FileStore on a throw-away directory, and the URL that picks a store."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake_hub.attachments import (
    FileStore,
    MissingAttachment,
    StoreUnavailable,
    open_store,
)
from intake_hub.attachments.s3 import S3Store
from intake_hub.config import ConfigError

PHOTO = b"\xff\xd8\xff not really a photo, but bytes all the same"


def stored_files(root: Path) -> list[Path]:
    """Every regular file under `root`."""
    return [p for p in root.rglob("*") if p.is_file()]


async def test_round_trip(tmp_path: Path) -> None:
    """What is put comes back byte for byte under its SHA-256 digest."""
    store = FileStore(tmp_path / "attachments")
    digest = await store.put(PHOTO)
    assert digest == hashlib.sha256(PHOTO).hexdigest()
    assert await store.get(digest) == PHOTO
    assert (tmp_path / "attachments" / digest[:2] / digest[2:4] / digest).is_file()


async def test_same_bytes_twice_make_one_file(tmp_path: Path) -> None:
    """Uploading the same bytes again returns the same digest and keeps one file."""
    store = FileStore(tmp_path)
    first = await store.put(PHOTO)
    second = await store.put(PHOTO)
    assert first == second
    assert len(stored_files(tmp_path)) == 1


async def test_files_and_directories_are_private(tmp_path: Path) -> None:
    """Stored files are 0600 and their directories 0700, whatever the umask."""
    old = os.umask(0o022)
    try:
        store = FileStore(tmp_path / "attachments")
        digest = await store.put(PHOTO)
    finally:
        os.umask(old)
    path = store.path(digest)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, tmp_path / "attachments"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


@pytest.mark.parametrize("digest", ["../../etc/passwd", "A" * 64, "ab", "0" * 63 + "/"])
async def test_a_bad_digest_is_refused_before_touching_disk(tmp_path: Path, digest: str) -> None:
    """A digest that is not 64 lowercase hex characters never becomes a path."""
    root = tmp_path / "attachments"
    store = FileStore(root)
    with pytest.raises(ValueError, match="digest"):
        await store.get(digest)
    with pytest.raises(ValueError, match="digest"):
        await store.delete(digest)
    assert not root.exists()


async def test_digests_lists_what_is_stored(tmp_path: Path) -> None:
    """digests() yields every stored digest once, with a UTC store time, and no temp files."""
    store = FileStore(tmp_path)
    assert [d async for d, _ in store.digests()] == []
    stored = {await store.put(bytes([n]) * 10) for n in range(5)}
    (store.path(next(iter(stored))).parent / f".{'0' * 64}.1234.part").write_bytes(b"half")
    listed = [(digest, at) async for digest, at in store.digests()]
    assert {digest for digest, _ in listed} == stored
    assert len(listed) == len(stored)
    assert all(at.tzinfo == UTC for _, at in listed)


async def test_putting_again_refreshes_the_store_time(tmp_path: Path) -> None:
    """A re-upload of old bytes moves their store time, so the orphan sweep spares them."""
    store = FileStore(tmp_path)
    digest = await store.put(PHOTO)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    os.utime(store.path(digest), (long_ago, long_ago))
    await store.put(PHOTO)
    [(_, at)] = [item async for item in store.digests()]
    assert at.year > 2020


async def test_delete(tmp_path: Path) -> None:
    """A deleted attachment is missing afterwards; deleting it again is fine."""
    store = FileStore(tmp_path)
    digest = await store.put(PHOTO)
    await store.delete(digest)
    with pytest.raises(MissingAttachment):
        await store.get(digest)
    await store.delete(digest)
    assert stored_files(tmp_path) == []


async def test_get_of_an_unknown_digest_is_missing(tmp_path: Path) -> None:
    """get() of a well-formed digest never stored raises MissingAttachment."""
    with pytest.raises(MissingAttachment):
        await FileStore(tmp_path).get("0" * 64)


async def test_an_unwritable_root_is_unavailable(tmp_path: Path) -> None:
    """When the store cannot write (here its root is a file) put raises StoreUnavailable."""
    blocker = tmp_path / "attachments"
    blocker.write_bytes(b"a file where the directory should be")
    with pytest.raises(StoreUnavailable):
        await FileStore(blocker).put(PHOTO)
    assert blocker.read_bytes().startswith(b"a file")


@pytest.mark.parametrize("url", [None, ""])
def test_open_store_defaults_to_home(tmp_path: Path, url: str | None) -> None:
    """Without a URL attachments live in HOME/attachments."""
    store = open_store(url, tmp_path)
    assert isinstance(store, FileStore)
    assert store.root == tmp_path / "attachments"


def test_open_store_file_url(tmp_path: Path) -> None:
    """file:///abs/path puts the files at that path."""
    store = open_store(f"file://{tmp_path}/blobs", Path("/unused"))
    assert isinstance(store, FileStore)
    assert store.root == tmp_path / "blobs"


def test_open_store_s3_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """s3://bucket/prefix opens an S3Store on that bucket and prefix."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = open_store("s3://tickets-bucket/attachments/prod/", Path("/unused"))
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("tickets-bucket", "attachments/prod")
    assert store.key("0" * 64) == "attachments/prod/" + "0" * 64


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/x",
        "file://relative/path",
        "s3://",
        "s3://bucket/prefix?endpoint=x",
        "attachments",
        "redis://user:hunter2-secret@host/0",
    ],
)
def test_open_store_refuses_other_urls(tmp_path: Path, url: str) -> None:
    """Any other URL is a ConfigError that names the variable and does not echo secrets."""
    with pytest.raises(ConfigError, match="INTAKE_HUB_ATTACHMENTS_URL") as caught:
        open_store(url, tmp_path)
    assert "hunter2" not in str(caught.value)
