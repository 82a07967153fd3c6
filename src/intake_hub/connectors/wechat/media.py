"""Customers' images, voice and video: fetched from WeChat after the passive reply.

A push only names a media id, and WeChat keeps the file for 3 days. Persistence writes
a `pending` attachment row per id; every process that mounts the account polls for due
rows here, leases each (one process fetches it), downloads it, checks it and stores it.
A failed fetch waits with backoff, up to the 3 days; a lease left by a process that died
runs out on its own, and the row is fetched again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from intake_hub.attachments import AttachmentStore, Refused, StoreUnavailable, check
from intake_hub.connectors.wechat import token_lease
from intake_hub.connectors.wechat.api import TOKEN_REJECTED, AccessTokens, TokenError
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.normalize import MEDIA
from intake_hub.connectors.wechat.stores import TokenStore
from intake_hub.periodic import Periodic
from intake_hub.storage import attachments as rows
from intake_hub.storage.attachments import Pending

log = logging.getLogger(__name__)

MEDIA_PATH = "/cgi-bin/media/get"
INVALID_MEDIA = 40007  # what WeChat answers once a temporary file is gone
LIFETIME = timedelta(days=3)
CONCURRENCY = 4
JSON_TYPES = frozenset({"application/json", "text/plain"})


class Later(Exception):
    """A fetch failed in a way that may pass: try again after a while."""


class Never(Exception):
    """A fetch that can never succeed (the file is gone at WeChat)."""


class _Rejected(Exception):
    """WeChat rejected the access_token (40001/42001)."""


@dataclass(frozen=True)
class Media:
    """A downloaded file, with the name WeChat gave it if any."""

    data: bytes
    filename: str | None


async def _read(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    # One byte past the limit is enough for the checks to refuse it as too large.
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            break
    return bytes(buf[: limit + 1])


class MediaApi:
    """`/cgi-bin/media/get`: one temporary media file, or Later/Never saying why not."""

    def __init__(
        self, session: aiohttp.ClientSession, tokens: AccessTokens, api_base: str, max_bytes: int
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._base = api_base.rstrip("/")
        self._max = max_bytes

    async def get(self, media_id: str) -> Media:
        """The file's bytes; a rejected token is replaced once, as for sends."""
        refreshed = False
        while True:
            token = await self._tokens.get()
            try:
                return await self._get(token, media_id)
            except _Rejected:
                if refreshed:
                    raise Later("access_token rejected after a refresh") from None
                refreshed = True
                await self._tokens.refresh(token)

    async def _get(self, token: str, media_id: str) -> Media:
        params = {"access_token": token, "media_id": media_id}
        async with self._session.get(self._base + MEDIA_PATH, params=params) as resp:
            if resp.status != 200:
                raise Later(f"HTTP {resp.status}")
            data = await _read(resp, self._max)
            filename = resp.content_disposition.filename if resp.content_disposition else None
            if resp.content_type not in JSON_TYPES:
                return Media(data, filename)
        try:
            doc: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            return Media(data, filename)
        if not isinstance(doc, dict):
            return Media(data, filename)
        if isinstance(url := doc.get("video_url"), str) and url.startswith(("https://", "http://")):
            # Videos are answered with a link to the file rather than the file.
            return await self._video(url)
        code = int(doc.get("errcode", 0) or 0)
        if code in TOKEN_REJECTED:
            raise _Rejected()
        if code == INVALID_MEDIA:
            raise Never("expired")
        raise Later(f"{code} {doc.get('errmsg', '')}".strip())

    async def _video(self, url: str) -> Media:
        async with self._session.get(url) as resp:
            if resp.status != 200:
                raise Later(f"video HTTP {resp.status}")
            return Media(await _read(resp, self._max), None)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class MediaFetcher:
    """Polls one account's pending media and stores each file once.

    Runs in every process that mounts an account with an app secret; the row's lease
    makes one of them fetch each file, and `fetched` only moves a pending row on.
    """

    def __init__(
        self, config: WeChatConfig, files: AttachmentStore, *, lease: TokenStore = token_lease
    ) -> None:
        self.config = config
        self._files = files
        self._lease = lease
        self._source = f"wechat/{config.name}"
        # Longer than a fetch can take (token wait, two downloads, checks), so two
        # processes never hold one row at once.
        self._hold = timedelta(seconds=config.media_timeout_s * 4 + 60)
        self._session: aiohttp.ClientSession | None = None
        self._api: MediaApi | None = None
        self._poller = Periodic(f"wechat-media/{config.name}", config.media_poll_s, self.run_once)

    async def open(self) -> None:
        """Make the HTTP session and token reader without polling (tests drive `run_once`)."""
        c = self.config
        timeout = aiohttp.ClientTimeout(total=c.media_timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        tokens = AccessTokens(self._session, c.api_base, c.app_id, c.app_secret, lease=self._lease)
        self._api = MediaApi(self._session, tokens, c.api_base, c.media_max_bytes)

    async def start(self) -> None:
        """Open and begin polling (the database is open by now)."""
        await self.open()
        self._poller.start()

    async def stop(self) -> None:
        """Stop polling, handing any fetch in flight back, and close the session."""
        await self._poller.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run_once(self) -> int:
        """One pass: fetch every due file of the account; returns how many were stored."""
        due = await rows.due(self._source, datetime.now(UTC))
        mine = [p for p in due if p.source_ref.startswith(MEDIA)]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(p: Pending) -> int:
            async with gate:
                return await self._take(p)

        return sum(await asyncio.gather(*(one(p) for p in mine)))

    async def _take(self, p: Pending) -> int:
        expires = _aware(p.received_at) + LIFETIME
        if expires < datetime.now(UTC):
            await rows.gave_up(p.id, "expired")
            return 0
        if not await rows.lease(p.id, p.attempts, self._hold):
            return 0
        try:
            return await self._fetch(p, expires)
        except asyncio.CancelledError:
            # Stopped mid-fetch: the next process may take the row at once.
            await rows.retry_at(p.id, datetime.now(UTC), "interrupted")
            raise

    async def _fetch(self, p: Pending, expires: datetime) -> int:
        assert self._api is not None, "open() first"
        try:
            media = await self._api.get(p.source_ref.removeprefix(MEDIA))
            # Re-encoding a large photo takes a while: not on the loop that answers WeChat.
            checked = await asyncio.to_thread(
                check,
                media.data,
                name=p.name or media.filename or p.kind,
                max_bytes=self.config.media_max_bytes,
            )
            digest = await self._files.put(checked.data)
        except Never as exc:
            await self._give_up(p, str(exc))
            return 0
        except Refused as exc:
            await self._give_up(p, f"{exc.reason}: {exc}")
            return 0
        except (Later, TokenError, StoreUnavailable, aiohttp.ClientError, TimeoutError) as exc:
            await self._later(p, expires, str(exc) or type(exc).__name__)
            return 0
        await rows.fetched(p.id, digest, checked.name, checked.content_type, len(checked.data))
        log.info("%s: stored %s %s (%d bytes)", self._source, p.kind, p.id, len(checked.data))
        return 1

    async def _give_up(self, p: Pending, error: str) -> None:
        log.warning("%s: %s %s not fetched: %s", self._source, p.kind, p.id, error)
        await rows.gave_up(p.id, error)

    async def _later(self, p: Pending, expires: datetime, error: str) -> None:
        delays = self.config.media_retry_s
        wait = delays[min(p.attempts, len(delays) - 1)] * random.uniform(0.8, 1.2)
        at = datetime.now(UTC) + timedelta(seconds=wait)
        if at > expires:
            await self._give_up(p, f"expired; last: {error}")
            return
        log.info("%s: %s %s failed (%s), again in %.0fs", self._source, p.kind, p.id, error, wait)
        await rows.retry_at(p.id, at, error)
