"""WeChat's server API over aiohttp: the shared access_token and customer-service sends."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from intake_hub.connectors.wechat import token_lease
from intake_hub.connectors.wechat.stores import Token, TokenStore

log = logging.getLogger(__name__)

TOKEN_PATH = "/cgi-bin/stable_token"
SEND_PATH = "/cgi-bin/message/custom/send"

TOKEN_REJECTED = frozenset({40001, 40014, 42001})  # invalid, malformed, expired
FINAL = frozenset({45015, 45047})  # 48 h window closed / unfollowed; 5-message quota used
BUSY = -1  # "system busy, try again"

# A new token replaces the old one within about 5 minutes: fetch before the last 5.
REFRESH_MARGIN = timedelta(minutes=5)
LEASE_S = 30.0
POLL_S = 0.05


class TokenError(Exception):
    """No access_token could be had (bad credentials, or WeChat keeps refusing)."""


def _now() -> datetime:
    return datetime.now(UTC)


class AccessTokens:
    """One account's access_token: read from the database, fetched by one process at a time.

    Every process (and every instance here) keeps the token in memory until it nears
    expiry, then reads the shared row; only the holder of the row's lease calls
    `/cgi-bin/stable_token`, everyone else waits for the row to change.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_base: str,
        app_id: str,
        app_secret: str,
        *,
        wait_s: float = LEASE_S * 2,
        lease: TokenStore = token_lease,
    ) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self._wait_s = wait_s
        self._lease = lease
        self._owner = uuid.uuid4().hex
        self._cached: Token | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, token: Token, now: datetime) -> bool:
        return (
            token.value is not None
            and token.expires_at is not None
            and token.expires_at - REFRESH_MARGIN > now
        )

    async def get(self) -> str:
        """A token valid for at least a few more minutes."""
        cached = self._cached
        if cached is not None and self._fresh(cached, _now()) and cached.value is not None:
            return cached.value
        return await self._obtain(rejected=None)

    async def refresh(self, rejected: str) -> str:
        """Replace `rejected` (WeChat answered 40001/42001 to it): one fetch among all callers."""
        self._cached = None
        return await self._obtain(rejected=rejected)

    async def _obtain(self, rejected: str | None) -> str:
        # One caller per process goes to the database; the others take what it found.
        async with self._lock:
            cached = self._cached
            if cached is not None and self._fresh(cached, _now()) and cached.value != rejected:
                assert cached.value is not None
                return cached.value
            token = await self._shared(rejected)
            self._cached = token
            assert token.value is not None
            return token.value

    async def _shared(self, rejected: str | None) -> Token:
        deadline = asyncio.get_running_loop().time() + self._wait_s
        while True:
            now = _now()
            row = await self._lease.read(self.app_id, now)
            if self._fresh(row, now) and row.value != rejected:
                return row
            if not row.leased and await self._lease.try_lease(
                self.app_id, self._owner, now, LEASE_S, now + REFRESH_MARGIN, rejected
            ):
                return await self._fetch(force=rejected is not None)
            if asyncio.get_running_loop().time() > deadline:
                raise TokenError(f"{self.app_id}: no access_token after {self._wait_s:.0f}s")
            await asyncio.sleep(POLL_S)

    async def _fetch(self, *, force: bool) -> Token:
        body = {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self._secret,
            # Only after WeChat rejected the current one: forced refreshes are rationed.
            "force_refresh": force,
        }
        try:
            async with self._session.post(self._base + TOKEN_PATH, data=orjson.dumps(body)) as r:
                r.raise_for_status()
                data: dict[str, Any] = orjson.loads(await r.read())
        except BaseException:
            await self._lease.release(self.app_id, self._owner)
            raise
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            await self._lease.release(self.app_id, self._owner)
            raise TokenError(f"{self.app_id}: stable_token said {data.get('errcode')}")
        now = _now()
        expires = now + timedelta(seconds=int(data.get("expires_in", 7200)))
        log.info("wechat %s: fetched a new access_token (force=%s)", self.app_id, force)
        if not await self._lease.store(self.app_id, self._owner, token, expires, now):
            # Our lease ran out mid-fetch and someone else fetched: theirs is the one.
            return await self._lease.read(self.app_id, _now())
        return Token(token, expires, leased=False)


@dataclass(frozen=True)
class Outcome:
    """How a send ended: `sent`, or why not; `final` means trying again cannot help."""

    sent: bool
    code: int | None = None
    reason: str = ""
    final: bool = True


class CustomerService:
    """`/cgi-bin/message/custom/send` with backoff on transient errors, never on final ones.

    Only answers that prove the message was not taken are retried: 5xx, errcode -1, a
    refused connection, and one retry with a new token after 40001/42001. A timeout or a
    dropped connection mid-request may have delivered it, so it is reported, not resent.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: AccessTokens,
        api_base: str,
        *,
        delays: Sequence[float] = (0.5, 2.0, 8.0),
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._base = api_base.rstrip("/")
        self._delays = tuple(delays)

    async def send_text(self, openid: str, text: str) -> Outcome:
        """Send one text message to the customer; returns how it ended."""
        body = orjson.dumps({"touser": openid, "msgtype": "text", "text": {"content": text}})
        refreshed = False
        failures = 0
        while True:
            token = await self._tokens.get()
            outcome = await self._post(token, body)
            if outcome.code in TOKEN_REJECTED and not refreshed:
                refreshed = True
                await self._tokens.refresh(token)
                continue
            if outcome.final or failures >= len(self._delays):
                return outcome
            await asyncio.sleep(self._delays[failures])
            failures += 1

    async def _post(self, token: str, body: bytes) -> Outcome:
        url = self._base + SEND_PATH
        try:
            async with self._session.post(
                url,
                params={"access_token": token},
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp:
                if resp.status >= 500:
                    return Outcome(False, resp.status, f"HTTP {resp.status}", final=False)
                if resp.status != 200:
                    return Outcome(False, resp.status, f"HTTP {resp.status}")
                data: dict[str, Any] = orjson.loads(await resp.read())
        except aiohttp.ClientConnectorError as exc:
            return Outcome(False, None, f"connect: {exc.os_error}", final=False)
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError) as exc:
            return Outcome(False, None, f"in doubt: {type(exc).__name__}")
        code = int(data.get("errcode", 0))
        if code == 0:
            return Outcome(True, 0, "ok")
        reason = f"{code} {data.get('errmsg', '')}".strip()
        return Outcome(False, code, reason, final=code != BUSY)
