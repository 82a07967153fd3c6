"""The WeChat channel's HTTP side: URL check, verified push in, passive reply out in time."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict  # type: ignore[import-untyped]
from aiohttp import web
from wechatpy import create_reply
from wechatpy.crypto import WeChatCrypto

from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.normalize import (
    BadMessage,
    Inbound,
    NoTicket,
    cdata_safe,
    parse,
    signature,
    to_envelope,
)
from intake_hub.envelope import Envelope, Reply
from intake_hub.ids import uuid7
from intake_hub.metrics import Metrics
from intake_hub.status import OpenTicket
from intake_hub.storage import wechat as deliveries
from intake_hub.storage import wechat_followers as followers
from intake_hub.storage import wechat_outbox as outbox
from intake_hub.ticketno import TicketNumbers

log = logging.getLogger(__name__)

Request = Callable[[Envelope, float], Awaitable[Reply | None]]

SUCCESS = "success"
TICKETS_UNAVAILABLE = "暂时查不到您的工单，请稍后再点一次“我的工单”。"
_POLL_S = 0.05
# A live first delivery answers or releases within the reply budget; past it plus this
# margin (clock skew between processes, a slow commit) its holder is presumed dead.
TAKEOVER_MARGIN_S = 2.0
# Delivery rows only have to outlive WeChat's retries; every process prunes its accounts'.
DELIVERY_RETENTION = timedelta(days=1)
PRUNE_EVERY_S = 3600.0


@dataclass
class WeChatConnector:
    """One official account at `/hooks/<name>`: verifies, dedupes, emits, answers in time."""

    config: WeChatConfig
    request: Request
    numbers: TicketNumbers
    metrics: Metrics
    # The customer's open tickets as the rules word them (the "my tickets" button's answer).
    tickets_text: Callable[[Sequence[OpenTicket]], str | None]
    _inflight: dict[str, asyncio.Future[str]] = field(default_factory=dict, init=False)
    _cryptos: tuple[WeChatCrypto, ...] = field(default=(), init=False)
    _pruner: asyncio.Task[None] | None = field(default=None, init=False)
    _book: deliveries.Deliveries = field(default_factory=deliveries.Deliveries, init=False)

    name = "wechat"

    def __post_init__(self) -> None:
        c = self.config
        self._cryptos = tuple(WeChatCrypto(c.token, key, c.app_id) for key in c.aes_keys)

    @property
    def path(self) -> str:
        """The URL to enter on WeChat's server settings page."""
        return f"/hooks/{self.config.name}"

    def routes(self) -> list[web.RouteDef]:
        """The channel's routes, mounted by the app."""
        return [web.get(self.path, self.verify_url), web.post(self.path, self.receive)]

    async def start(self, _app: object = None) -> None:
        """Begin pruning old delivery rows, now and hourly (an aiohttp `on_startup` hook)."""
        self._pruner = asyncio.create_task(self._prune(), name=f"wechat-prune/{self.config.name}")

    async def stop(self, _app: object = None) -> None:
        """Stop pruning (an aiohttp `on_shutdown` hook)."""
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
            self._pruner = None

    async def _prune(self) -> None:
        while True:
            try:
                before = datetime.now(UTC) - DELIVERY_RETENTION
                if gone := await deliveries.prune(self.config.name, before):
                    log.info("wechat/%s: forgot %d old deliveries", self.config.name, gone)
            except Exception:
                log.exception("wechat/%s: pruning deliveries failed", self.config.name)
            await asyncio.sleep(PRUNE_EVERY_S)

    def _reject(self, reason: str, error: web.HTTPException, detail: str = "") -> web.HTTPException:
        """Count the refusal under a fixed `reason` label; the body says what was wrong."""
        self.metrics.rejected.labels("wechat", reason).inc()
        reason = f"{reason}: {detail}" if detail else reason
        log.info("wechat/%s: refused a request: %s", self.config.name, reason)
        error.text = reason
        return error

    def _signed(self, query: Mapping[str, str]) -> bool:
        got = query.get("signature", "")
        want = signature(self.config.token, query.get("timestamp", ""), query.get("nonce", ""))
        return hmac.compare_digest(want.encode(), got.encode())

    async def verify_url(self, request: web.Request) -> web.Response:
        """`GET /hooks/<name>`: WeChat's URL check; echoes `echostr` when the signature holds."""
        if not self._signed(request.query):
            raise self._reject("signature", web.HTTPForbidden())
        # Official accounts send the echostr in plaintext even in safe mode.
        return web.Response(text=request.query.get("echostr", ""))

    async def _body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        size = request.content_length or 0
        if size > limit:
            raise self._reject("too_large", web.HTTPRequestEntityTooLarge(limit, size))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise self._reject("too_large", web.HTTPRequestEntityTooLarge(limit, size))
            chunks.append(chunk)
        return b"".join(chunks)

    def _decrypt(self, body: bytes, query: Mapping[str, str]) -> tuple[bytes, WeChatCrypto]:
        try:
            outer = xmltodict.parse(body)["xml"]
            encrypt = outer["Encrypt"]
        except (ExpatError, ValueError, KeyError, TypeError) as exc:
            raise self._reject("unreadable", web.HTTPBadRequest(), type(exc).__name__) from None
        if not isinstance(encrypt, str):
            raise self._reject("unreadable", web.HTTPBadRequest(), "Encrypt")
        ts, nonce = query.get("timestamp", ""), query.get("nonce", "")
        got = query.get("msg_signature", "")
        want = signature(self.config.token, ts, nonce, encrypt)
        if not hmac.compare_digest(want.encode(), got.encode()):
            raise self._reject("msg_signature", web.HTTPForbidden())
        for crypto in self._cryptos:
            try:
                plain: str = crypto.decrypt_message(outer, got, ts, nonce)
            # A wrong key yields garbage, and garbage fails in any of a dozen ways.
            except Exception:
                continue
            return plain.encode(), crypto
        raise self._reject("undecryptable", web.HTTPBadRequest(), "unknown key or other appid")

    async def receive(self, request: web.Request) -> web.Response:
        """`POST /hooks/<name>`: a push; the passive reply, or `success` once out of time."""
        started = time.perf_counter()
        query = request.query
        if not self._signed(query):
            raise self._reject("signature", web.HTTPForbidden())
        body = await self._body(request)
        mode = query.get("encrypt_type", "raw").lower()
        crypto: WeChatCrypto | None = None
        if mode == "aes" and self._cryptos:
            body, crypto = self._decrypt(body, query)
        elif mode != "raw" or self.config.encrypted:
            # In safe mode the body is the only part the token does not sign: insist on AES.
            expected = "aes" if self.config.encrypted else "raw"
            raise self._reject("mode", web.HTTPBadRequest(), f"encrypt_type must be {expected}")
        try:
            inbound = parse(body)
            outcome = to_envelope(
                inbound,
                env_id=uuid7(),
                ticket=self.numbers.next(),
                received_at=datetime.now(UTC),
                instance=self.config.name,
                welcome=self.config.welcome,
                menu=self.config.menu,
                my_tickets_key=self.config.my_tickets_key,
            )
        except BadMessage as exc:
            raise self._reject("unreadable", web.HTTPBadRequest(), str(exc)) from None
        if isinstance(outcome, NoTicket):
            answer = await self._no_ticket(outcome, inbound, started)
        else:
            answer = await self._answer_once(outcome, started)
        response = self._render(answer, inbound, crypto, query.get("nonce", ""))
        self.metrics.intake_latency.labels("wechat").observe(time.perf_counter() - started)
        return response

    async def _no_ticket(self, outcome: NoTicket, inbound: Inbound, started: float) -> str:
        """Do what a push that makes no ticket still asks for; the passive reply text."""
        at = datetime.fromtimestamp(inbound.create_time, UTC)
        if outcome.action == "follow":
            try:
                await followers.follow(inbound.openid, inbound.union_id, at)
            except Exception:
                # The welcome matters more now; the customer's first message makes the
                # customer anyway, and a later message outweighs a stale unfollow mark.
                log.exception("wechat/%s: could not record a follow", self.config.name)
        elif outcome.action == "unfollow":
            try:
                await followers.unfollow(inbound.openid, inbound.union_id, at)
            except Exception:
                log.exception("wechat/%s: could not record an unfollow", self.config.name)
                # Not answered, so WeChat delivers the event again.
                raise web.HTTPServiceUnavailable(text="unfollow not recorded") from None
        elif outcome.action == "my_tickets":
            return await self._my_tickets(inbound.openid, started)
        return outcome.reply

    async def _my_tickets(self, openid: str, started: float) -> str:
        """The customer's open tickets as text, or a "try again" text when out of time."""
        try:
            found = await asyncio.wait_for(followers.open_tickets(openid), self._remaining(started))
        except Exception:
            log.exception("wechat/%s: could not list open tickets", self.config.name)
            return TICKETS_UNAVAILABLE
        return self.tickets_text(found) or ""

    def _remaining(self, started: float) -> float:
        return max(0.0, self.config.reply_budget_s - (time.perf_counter() - started))

    async def _answer_once(self, env: Envelope, started: float) -> str:
        """Emit on the first delivery only; every delivery of it gets the first one's answer."""
        instance, key = self.config.name, env.external_id
        # A second round only when the first delivery failed to emit while this one waited.
        for _ in range(2):
            claim = await self._book.claim(instance, key, env.id, env.ticket)
            if claim.first:
                return await self._emit_first(env, started)
            if claim.answer is not None:
                return claim.answer
            answer = await self._await_first(env, claim, started)
            if answer is not None:
                return answer
        return ""

    async def _emit_first(self, env: Envelope, started: float, attempt: int = 0) -> str:
        instance, key = self.config.name, env.external_id
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            try:
                reply = await self.request(env, self._remaining(started))
            except Exception:
                # Nothing reached the bus: let WeChat's retry be a first delivery again.
                await deliveries.release(instance, key, attempt)
                raise
            answer = reply.text if reply is not None and reply.kind != "none" else ""
            if reply is None:
                await self._expect_late_reply(env)
            done.set_result(answer)
            try:
                await self._book.record_answer(instance, key, answer)
            except Exception:
                log.exception("wechat/%s: could not record the answer to %s", instance, key)
            return answer
        finally:
            del self._inflight[key]
            if not done.done():
                done.cancel()

    async def _expect_late_reply(self, env: Envelope) -> None:
        """Out of time: the reply goes out by the customer-service API once it is stored."""
        try:
            await outbox.expect_reply(
                self.config.name,
                env.id,
                env.customer.key,
                env.ticket,
                env.received_at,
                datetime.now(UTC),
            )
        except Exception:
            log.exception(
                "wechat/%s: could not queue the late reply to %s", self.config.name, env.id
            )

    async def _await_first(
        self, env: Envelope, claim: deliveries.Claim, started: float
    ) -> str | None:
        """The first delivery's answer ("" once out of time); None if it failed to emit."""
        instance, key = self.config.name, env.external_id
        first = self._inflight.get(key)
        if first is not None:
            await asyncio.wait({first}, timeout=self._remaining(started))
            if first.cancelled():
                return None
            return first.result() if first.done() else ""
        # The first delivery is in another process: watch its row.
        grace = self.config.reply_budget_s + TAKEOVER_MARGIN_S
        row: deliveries.Claim | None = claim
        while row is not None:
            if row.answer is not None:
                return row.answer
            if row.stale(grace) and await deliveries.take_over(instance, key, row.attempt):
                return await self._take_over(env, row, started)
            left = self._remaining(started)
            if left <= 0:
                return ""
            await asyncio.sleep(min(_POLL_S, left))
            row = await deliveries.lookup(instance, key)
        return None

    async def _take_over(self, env: Envelope, row: deliveries.Claim, started: float) -> str:
        """Emit again for a holder that died before answering, as the envelope it claimed."""
        log.warning(
            "wechat/%s: taking over %s, left pending by attempt %d",
            self.config.name,
            env.external_id,
            row.attempt,
        )
        # The same id lets persistence drop a copy that did reach the bus; the same ticket
        # number keeps what the customer may already have been told.
        same = env.model_copy(update={"id": row.envelope_id, "ticket": row.ticket})
        return await self._emit_first(same, started, row.attempt + 1)

    def _render(
        self, answer: str, inbound: Inbound, crypto: WeChatCrypto | None, nonce: str
    ) -> web.Response:
        if not answer.strip():
            return web.Response(text=SUCCESS)
        xml: Any = create_reply(cdata_safe(answer), inbound.message).render()
        if crypto is not None:
            xml = crypto.encrypt_message(xml, nonce, str(int(time.time())))
        return web.Response(text=str(xml), content_type="application/xml")
