"""S3Store against moto's S3 server on loopback: real HTTP, real signatures, real errors."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto.server import ThreadedMotoServer

from intake_hub.attachments import MissingAttachment, StoreUnavailable, open_store
from intake_hub.attachments.s3 import S3Store

VOICE = b"#!AMR\n" + bytes(range(256)) * 8


def start_server() -> tuple[ThreadedMotoServer, str]:
    """A moto S3 server on a free loopback port, and its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One moto server for the module."""
    server, url = start_server()
    yield url
    server.stop()


def use_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    """Point the AWS_* variables at `url` with fake credentials and no config files."""
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def make_bucket(url: str) -> str:
    """A new empty bucket on the server at `url`."""
    name = f"intake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=name)
    return name


def keys(url: str, bucket: str) -> list[str]:
    """Every object key in `bucket`."""
    listing = boto3.client("s3", endpoint_url=url).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh bucket, with the environment pointing at the moto server."""
    use_endpoint(monkeypatch, tmp_path, endpoint)
    return make_bucket(endpoint)


async def test_round_trip(bucket: str, endpoint: str) -> None:
    """What is put comes back byte for byte, stored under prefix/digest."""
    store = S3Store(bucket, "attachments")
    digest = await store.put(VOICE)
    assert await store.get(digest) == VOICE
    assert keys(endpoint, bucket) == [f"attachments/{digest}"]
    await store.close()


async def test_same_bytes_twice_upload_once(bucket: str, endpoint: str) -> None:
    """A second put of the same bytes sends no second PutObject and leaves one object."""
    store = S3Store(bucket, "attachments")
    uploads: list[Any] = []
    store.client.meta.events.register("before-call.s3.PutObject", lambda **kw: uploads.append(kw))
    first = await store.put(VOICE)
    second = await store.put(VOICE)
    assert first == second
    assert len(uploads) == 1
    assert keys(endpoint, bucket) == [f"attachments/{first}"]
    await store.close()


async def test_uploads_carry_content_md5(bucket: str) -> None:
    """Every upload sends the MD5 of its bytes, so a server refuses bytes damaged on the way."""
    store = S3Store(bucket, "")
    headers: list[Any] = []
    store.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **kw: headers.append(request.headers)
    )
    await store.put(VOICE)
    expected = base64.b64encode(hashlib.md5(VOICE).digest())
    assert [h["Content-MD5"] for h in headers] == [expected]
    await store.close()


class Raw:
    """Just enough of a urllib3 response for botocore to read an answer body."""

    def __init__(self, body: bytes) -> None:
        """Answer with `body`."""
        self.body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        """The whole body in one piece."""
        yield self.body


async def test_a_damaged_upload_is_unavailable(bucket: str, endpoint: str) -> None:
    """A BadDigest answer (moto does not check MD5 itself) is StoreUnavailable: retry later."""
    store = S3Store(bucket, "", attempts=1)
    refusal = b"<Error><Code>BadDigest</Code><Message>Content-MD5 mismatch</Message></Error>"

    def refuse(request: Any, **kw: Any) -> AWSResponse:
        """Answer the upload as S3 answers a body that does not match its Content-MD5."""
        return AWSResponse(request.url, 400, HTTPHeaders(), Raw(refusal))

    store.client.meta.events.register("before-send.s3.PutObject", refuse)
    with pytest.raises(StoreUnavailable):
        await store.put(VOICE)
    assert keys(endpoint, bucket) == []
    await store.close()


async def test_missing_digest(bucket: str) -> None:
    """get() of a digest never stored raises MissingAttachment."""
    store = S3Store(bucket, "attachments")
    with pytest.raises(MissingAttachment):
        await store.get("f" * 64)
    await store.close()


async def test_delete_and_digests(bucket: str) -> None:
    """digests() lists what is stored; a deleted digest is gone and deleting again is fine."""
    store = S3Store(bucket, "a")
    stored = {await store.put(bytes([n]) * 100) for n in range(3)}
    listed = {digest async for digest, _ in store.digests()}
    assert listed == stored
    gone = stored.pop()
    await store.delete(gone)
    await store.delete(gone)
    assert {digest async for digest, _ in store.digests()} == stored
    with pytest.raises(MissingAttachment):
        await store.get(gone)
    await store.close()


async def test_prefix_is_respected(bucket: str, endpoint: str) -> None:
    """Stores with different prefixes in one bucket never see each other's objects."""
    ours = S3Store(bucket, "tenant/one")
    theirs = S3Store(bucket, "tenant/other")
    digest = await ours.put(VOICE)
    await theirs.put(b"someone else's file")
    boto3.client("s3", endpoint_url=endpoint).put_object(
        Bucket=bucket, Key="tenant/one/not-a-digest", Body=b"x"
    )
    assert [d async for d, _ in ours.digests()] == [digest]
    assert f"tenant/one/{digest}" in keys(endpoint, bucket)
    with pytest.raises(MissingAttachment):
        await theirs.get(digest)
    await ours.close()
    await theirs.close()


async def test_open_store_s3_url(bucket: str, endpoint: str) -> None:
    """open_store("s3://bucket/prefix") stores into that bucket under that prefix."""
    store = open_store(f"s3://{bucket}/uploads/", Path("/unused"))
    digest = await store.put(VOICE)
    assert await store.get(digest) == VOICE
    assert keys(endpoint, bucket) == [f"uploads/{digest}"]
    await store.close()


async def test_stopped_server_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When the object store cannot be reached, put, get and listing raise StoreUnavailable."""
    server, url = start_server()
    use_endpoint(monkeypatch, tmp_path, url)
    bucket = make_bucket(url)
    store = S3Store(bucket, "attachments", attempts=1)
    digest = await store.put(VOICE)
    server.stop()
    with pytest.raises(StoreUnavailable):
        await store.put(b"new bytes")
    with pytest.raises(StoreUnavailable):
        await store.get(digest)
    with pytest.raises(StoreUnavailable):
        [d async for d, _ in store.digests()]
    await store.close()
