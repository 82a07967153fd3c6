"""Is this request WeChat's? The token signature, a bounded body, and safe-mode decryption.

Every refusal is counted under a fixed reason label and answered with the reason only.
What passes is an `Opened` push: its plaintext XML, and the key it came sealed with
(None in plaintext mode, where the signature covers token, timestamp and nonce but not
the body, so what the body says of its sender is only claimed).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.parsers.expat import ExpatError

import xmltodict  # type: ignore[import-untyped]
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.normalize import signature
from intake_hub.metrics import Metrics

log = logging.getLogger(__name__)


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
    _cryptos: tuple[WeChatCrypto, ...] = field(default=(), init=False)

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

    async def open(self, request: web.Request) -> Opened:
        """The push in `request`, signed, within the size limit and decrypted when sealed."""
        query = request.query
        self.check_signature(query)
        body = await self._body(request)
        mode = query.get("encrypt_type", "raw").lower()
        if mode == "aes" and self._cryptos:
            return Opened(*self._decrypt(body, query))
        if mode != "raw" or self.config.encrypted:
            # In safe mode the body is the only part the token does not sign: insist on AES.
            expected = "aes" if self.config.encrypted else "raw"
            raise self.reject("mode", web.HTTPBadRequest(), f"encrypt_type must be {expected}")
        return Opened(body, None)

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
