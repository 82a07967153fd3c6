"""Is this request WeChat's? Signature, fresh timestamp, no replay, bounded body, decryption.

Every refusal is counted under a fixed reason label and answered with the reason only,
except a stale or replayed request: that is a bare 403, logged at most once a minute.
What passes is an `Opened` push: its plaintext XML, and the key it came sealed with
(None in plaintext mode, where the signature covers token, timestamp and nonce but not
the body, so what the body says of its sender is only claimed).

Replay: every request's signed `timestamp` must lie within `max_clock_skew_s` of our
clock. In plaintext mode a signed query would otherwise carry any body for that long, so
its (nonce, timestamp) is recorded with the body's hash, and the same query is accepted
again only with the same body: WeChat's retry of that push, which the delivery book then
answers as the first. Safe mode needs no record: `msg_signature` covers the body, so a
replay is byte-identical and the book already makes it the first delivery's answer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.parsers.expat import ExpatError

import xmltodict  # type: ignore[import-untyped]
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.normalize import signature
from intake_hub.connectors.wechat.stores import NonceStore
from intake_hub.metrics import Metrics

log = logging.getLogger(__name__)

# The clock signed timestamps are judged by (a module attribute so tests can set it).
clock: Callable[[], float] = time.time
# A flood of replays must not flood the log: one line per account per minute at most.
REFUSAL_LOG_EVERY_S = 60.0
_NONCE_MAX = 64


@dataclass(frozen=True)
class Opened:
    """A push that passed every check: the plaintext body, and its key in safe mode."""

    body: bytes
    crypto: WeChatCrypto | None

    @property
    def decrypted(self) -> bool:
        """Whether it came sealed, so WeChat's signature covers what the body says."""
        return self.crypto is not None


@dataclass
class Verifier:
    """One account's checks, with the safe-mode keys it holds (current first)."""

    config: WeChatConfig
    metrics: Metrics
    nonces: NonceStore
    _cryptos: tuple[WeChatCrypto, ...] = field(default=(), init=False)
    _log_after: float = field(default=0.0, init=False)
    _unlogged: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        c = self.config
        self._cryptos = tuple(WeChatCrypto(c.token, key, c.app_id) for key in c.aes_keys)

    def reject(self, reason: str, error: web.HTTPException, detail: str = "") -> web.HTTPException:
        """Count the refusal under a fixed `reason` label; the body says what was wrong."""
        self.metrics.rejected.labels("wechat", reason).inc()
        reason = f"{reason}: {detail}" if detail else reason
        log.info("wechat/%s: refused a request: %s", self.config.name, reason)
        error.text = reason
        return error

    def check_signature(self, query: Mapping[str, str]) -> None:
        """Refuse (403) a request whose `signature` does not hold for our token."""
        got = query.get("signature", "")
        want = signature(self.config.token, query.get("timestamp", ""), query.get("nonce", ""))
        if not hmac.compare_digest(want.encode(), got.encode()):
            raise self.reject("signature", web.HTTPForbidden())

    def refuse(self, reason: str) -> web.HTTPException:
        """A bare 403 for a stale or replayed request, counted; logged once a minute at most."""
        self.metrics.rejected.labels("wechat", reason).inc()
        self._unlogged += 1
        now = time.monotonic()
        if now >= self._log_after:
            log.warning(
                "wechat/%s: refused %d stale or replayed request(s) since the last report "
                "(latest: %s)",
                self.config.name,
                self._unlogged,
                reason,
            )
            self._unlogged = 0
            self._log_after = now + REFUSAL_LOG_EVERY_S
        return web.HTTPForbidden()

    def check_fresh(self, query: Mapping[str, str]) -> int:
        """The signed `timestamp`; refuse (403) one outside `max_clock_skew_s` of our clock."""
        raw = query.get("timestamp", "")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
            raise self.refuse("stale")
        stamp = int(raw)
        if abs(clock() - stamp) > self.config.max_clock_skew_s:
            raise self.refuse("stale")
        return stamp

    async def check_url(self, query: Mapping[str, str]) -> None:
        """The GET URL check: signed, fresh, and in plaintext mode a query not used before."""
        self.check_signature(query)
        stamp = self.check_fresh(query)
        if not self.config.encrypted:
            # Else a captured URL check would lend its query to a forged plaintext push.
            await self._check_unseen(query, stamp, b"GET\0" + query.get("echostr", "").encode())

    async def open(self, request: web.Request) -> Opened:
        """The push in `request`, signed, fresh, within the size limit, decrypted when sealed."""
        query = request.query
        self.check_signature(query)
        stamp = self.check_fresh(query)
        body = await self._body(request)
        mode = query.get("encrypt_type", "raw").lower()
        if mode == "aes" and self._cryptos:
            return Opened(*self._decrypt(body, query))
        if mode != "raw" or self.config.encrypted:
            # In safe mode the body is the only part the token does not sign: insist on AES.
            expected = "aes" if self.config.encrypted else "raw"
            raise self.reject("mode", web.HTTPBadRequest(), f"encrypt_type must be {expected}")
        await self._check_unseen(query, stamp, b"POST\0" + body)
        return Opened(body, None)

    async def _check_unseen(self, query: Mapping[str, str], stamp: int, content: bytes) -> None:
        """Refuse (403) a (nonce, timestamp) first seen with other content than `content`."""
        nonce = query.get("nonce", "")
        if len(nonce) > _NONCE_MAX:
            raise self.refuse("replay")
        digest = hashlib.sha256(content).hexdigest()
        if not await self.nonces.see(self.config.name, nonce, stamp, digest):
            raise self.refuse("replay")

    async def _body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        size = request.content_length or 0
        if size > limit:
            raise self.reject("too_large", web.HTTPRequestEntityTooLarge(limit, size))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise self.reject("too_large", web.HTTPRequestEntityTooLarge(limit, size))
            chunks.append(chunk)
        return b"".join(chunks)

    def _decrypt(self, body: bytes, query: Mapping[str, str]) -> tuple[bytes, WeChatCrypto]:
        try:
            outer = xmltodict.parse(body)["xml"]
            encrypt = outer["Encrypt"]
        except (ExpatError, ValueError, KeyError, TypeError) as exc:
            raise self.reject("unreadable", web.HTTPBadRequest(), type(exc).__name__) from None
        if not isinstance(encrypt, str):
            raise self.reject("unreadable", web.HTTPBadRequest(), "Encrypt")
        ts, nonce = query.get("timestamp", ""), query.get("nonce", "")
        got = query.get("msg_signature", "")
        want = signature(self.config.token, ts, nonce, encrypt)
        if not hmac.compare_digest(want.encode(), got.encode()):
            raise self.reject("msg_signature", web.HTTPForbidden())
        for crypto in self._cryptos:
            try:
                plain: str = crypto.decrypt_message(outer, got, ts, nonce)
            # A wrong key yields garbage, and garbage fails in any of a dozen ways.
            except Exception:
                continue
            return plain.encode(), crypto
        raise self.reject("undecryptable", web.HTTPBadRequest(), "unknown key or other appid")
