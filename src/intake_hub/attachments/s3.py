"""S3Store: attachments in an S3-compatible bucket (AWS S3, Alibaba OSS, Tencent COS, MinIO).

boto3 runs in worker threads (asyncio.to_thread) rather than aiobotocore because boto3 is
the best-kept S3 client, moto's test server needs it anyway, and attachments are not on the
hot path where a thread hop per request would matter.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
)

from intake_hub.attachments.store import (
    MissingAttachment,
    StoreUnavailable,
    checked_digest,
    digest_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# Answers that a retry a little later can fix; BadDigest means the bytes were damaged on the way.
_TRANSIENT = frozenset(
    {"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "BadDigest"}
)


class S3Store:
    """Attachments as objects <prefix>/<digest> in one bucket, credentials from AWS_* variables."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        addressing_style: str | None = None,
        attempts: int = 3,
    ) -> None:
        """A client for `bucket`; endpoint, region and credentials come from the environment."""
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        config = Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            # OSS, COS and older MinIO refuse boto3's default CRC32 trailers; we send Content-MD5.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": _style(addressing_style)} if addressing_style else None,
        )
        session = boto3.session.Session(
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        )
        self.client: S3Client = session.client(
            "s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, config=config
        )

    def key(self, digest: str) -> str:
        """The object key of `digest`; the digest is validated first."""
        digest = checked_digest(digest)
        return f"{self.prefix}/{digest}" if self.prefix else digest

    async def put(self, data: bytes) -> str:
        """Upload `data` with its Content-MD5 unless HEAD says it is already there."""
        digest = digest_of(data)
        key = self.key(digest)
        await self._call("put", key, self._put, key, data)
        return digest

    def _put(self, key: str, data: bytes) -> None:
        if self._exists(key):
            try:
                # Refresh LastModified without sending the bytes, so an orphan sweep with a
                # grace period spares a blob that a new upload is about to reference.
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE",
                    ContentType="application/octet-stream",
                )
                return
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND:
                    raise
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentMD5=md5,
            ContentType="application/octet-stream",
        )

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    async def get(self, digest: str) -> bytes:
        """The stored bytes of `digest`, checked against the digest after the download."""
        key = self.key(digest)
        data = await self._call("get", key, self._get, key)
        if digest_of(data) != digest:
            raise StoreUnavailable(f"attachment {digest} arrived damaged; try again")
        return data

    def _get(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        return response["Body"].read()

    async def delete(self, digest: str) -> None:
        """Remove the object of `digest`; S3 answers success for an absent key too."""
        key = self.key(digest)
        await self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=key)

    async def digests(self) -> AsyncIterator[tuple[str, datetime]]:
        """Every digest under the prefix with its LastModified time, one listing page at a time."""
        request: dict[str, Any] = {"Bucket": self.bucket}
        if self.prefix:
            request["Prefix"] = f"{self.prefix}/"
        while True:
            page = await self._call("list", self.prefix, self._list, request)
            for item in page.get("Contents", ()):
                digest = item["Key"].rpartition("/")[2]
                if self.key_matches(item["Key"], digest):
                    yield digest, item["LastModified"].astimezone(UTC)
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def _list(self, request: dict[str, Any]) -> dict[str, Any]:
        return dict(self.client.list_objects_v2(**request))

    def key_matches(self, key: str, digest: str) -> bool:
        """Whether `key` is exactly the key this store would give `digest`."""
        try:
            return self.key(digest) == key
        except ValueError:
            return False

    async def close(self) -> None:
        """Close the client's connection pool."""
        await asyncio.to_thread(self.client.close)

    async def _call(self, what: str, key: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kw)
        except ClientError as exc:
            code = _code(exc)
            if what == "get" and code in _NOT_FOUND:
                raise MissingAttachment(key.rpartition("/")[2]) from None
            if code in _TRANSIENT or _status(exc) >= 500:
                raise StoreUnavailable(f"object store: {what} {key} failed: {code}") from exc
            raise
        except (ConnectionError, HTTPClientError, IncompleteReadError) as exc:
            raise StoreUnavailable(
                f"object store: {what} {key} failed: {type(exc).__name__}"
            ) from exc


def _style(value: str) -> Literal["virtual", "path"]:
    if value not in ("virtual", "path"):
        raise ValueError(f"addressing_style must be virtual or path, not {value!r}")
    return "virtual" if value == "virtual" else "path"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
