"""Customers' images, voice and video: fetched from WeChat after the passive reply.

A push only names a media id, and WeChat keeps the file for 3 days. Persistence writes
a `pending` attachment row per id, fetched by the shared loop of `tickets/fetching.py`
through WeChat's media API, up to those 3 days.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import aiohttp
import orjson

from intake_hub.attachments import AttachmentStore
from intake_hub.connectors.wechat import token_lease
from intake_hub.connectors.wechat.api import TOKEN_REJECTED, AccessTokens, TokenError
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.normalize import MEDIA
from intake_hub.connectors.wechat.stores import TokenStore
from intake_hub.storage.attachments import Pending
from intake_hub.tickets.fetching import Fetched, Later, Never, Pacing, PendingFiles

log = logging.getLogger(__name__)

MEDIA_PATH = "/cgi-bin/media/get"
INVALID_MEDIA = 40007  # what WeChat answers once a temporary file is gone
LIFETIME = timedelta(days=3)
JSON_TYPES = frozenset({"application/json", "text/plain"})


class _Rejected(Exception):
    """WeChat rejected the access_token (40001/42001)."""


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

    async def get(self, media_id: str) -> Fetched:
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

    async def _get(self, token: str, media_id: str) -> Fetched:
        params = {"access_token": token, "media_id": media_id}
        async with self._session.get(self._base + MEDIA_PATH, params=params) as resp:
            if resp.status != 200:
                raise Later(f"HTTP {resp.status}")
            data = await _read(resp, self._max)
            filename = resp.content_disposition.filename if resp.content_disposition else None
            if resp.content_type not in JSON_TYPES:
                return Fetched(data, filename)
        try:
            doc: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            return Fetched(data, filename)
        if not isinstance(doc, dict):
            return Fetched(data, filename)
        if isinstance(url := doc.get("video_url"), str) and url.startswith(("https://", "http://")):
            # Videos are answered with a link to the file rather than the file.
            return await self._video(url)
        code = int(doc.get("errcode", 0) or 0)
        if code in TOKEN_REJECTED:
            raise _Rejected()
        if code == INVALID_MEDIA:
            raise Never("expired")
        raise Later(f"{code} {doc.get('errmsg', '')}".strip())

    async def _video(self, url: str) -> Fetched:
        async with self._session.get(url) as resp:
            if resp.status != 200:
                raise Later(f"video HTTP {resp.status}")
            return Fetched(await _read(resp, self._max), None)


class MediaFetcher(PendingFiles):
    """Polls one account's pending media and stores each file once.

    Runs in every process that mounts an account with an app secret; the row's lease
    makes one of them fetch each file, and `fetched` only moves a pending row on.
    """

    transient = (TokenError,)

    def __init__(
        self, config: WeChatConfig, files: AttachmentStore, *, lease: TokenStore = token_lease
    ) -> None:
        pacing = Pacing(
            poll_s=config.media_poll_s,
            retry_s=config.media_retry_s,
            # Token wait, two downloads and the checks.
            hold=timedelta(seconds=config.media_timeout_s * 4 + 60),
            lifetime=LIFETIME,
            max_bytes=config.media_max_bytes,
        )
        super().__init__(f"wechat/{config.name}", files, pacing)
        self.config = config
        self._lease = lease
        self._session: aiohttp.ClientSession | None = None
        self._api: MediaApi | None = None

    async def open(self) -> None:
        """Make the HTTP session and token reader without polling (tests drive `run_once`)."""
        c = self.config
        timeout = aiohttp.ClientTimeout(total=c.media_timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        tokens = AccessTokens(self._session, c.api_base, c.app_id, c.app_secret, lease=self._lease)
        self._api = MediaApi(self._session, tokens, c.api_base, c.media_max_bytes)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wanted(self, p: Pending) -> bool:
        """Rows naming a WeChat media id."""
        return p.source_ref.startswith(MEDIA)

    async def download(self, p: Pending) -> Fetched:
        """The media file from WeChat's API."""
        assert self._api is not None, "open() first"
        return await self._api.get(p.source_ref.removeprefix(MEDIA))
