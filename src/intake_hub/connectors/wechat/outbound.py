"""WeChat's way out: deliveries queued in the outbox, and the sender that sends each once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import aiohttp

from intake_hub.connectors.wechat import outbox as outbox_rows
from intake_hub.connectors.wechat import token_lease
from intake_hub.connectors.wechat.api import AccessTokens, CustomerService, TokenError
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.stores import WINDOW, Job, OutboxStore, TokenStore
from intake_hub.envelope import Channel
from intake_hub.periodic import cancel
from intake_hub.storage.outboxes import FAILED, PENDING, SENT, SKIPPED
from intake_hub.tickets.outbound import Delivery

log = logging.getLogger(__name__)

# A claim older than this belongs to a worker that died mid-send.
STALE_CLAIM_S = 600.0
RETRY_LATER = timedelta(minutes=1)
MAX_ATTEMPTS = 5


class WeChatOutbox:
    """One account's `Outbound`: a delivery is an outbox row, sent later by its dispatcher."""

    channel: Channel = "wechat"

    def __init__(self, config: WeChatConfig, outbox: OutboxStore = outbox_rows) -> None:
        self.config = config
        self._outbox = outbox

    async def enqueue(self, delivery: Delivery) -> None:
        """Insert the outbox row in the caller's transaction; a queued key stays as it was."""
        if delivery.source != f"wechat/{self.config.name}":
            # An openid means something on its own account only.
            raise ValueError(f"{delivery.source} is not wechat/{self.config.name}")
        await self._outbox.enqueue(
            delivery.key,
            self.config.name,
            delivery.customer_key,
            delivery.number,
            delivery.text,
            delivery.ticket_updated_at,
            delivery.at,
            delivery.ticket_id,
        )

    async def queued(self, key: str) -> bool:
        """Whether a delivery with `key` was queued."""
        return await self._outbox.queued(key)


class Dispatcher:
    """Polls one account's outbox: resolves late auto-replies, then sends what is due.

    Runs in every process that mounts the account; the outbox's claim makes one of them
    send each message. Knows the database and WeChat, not the bus.
    """

    def __init__(
        self,
        config: WeChatConfig,
        *,
        delays: tuple[float, ...] = (0.5, 2.0, 8.0),
        outbox: OutboxStore = outbox_rows,
        lease: TokenStore = token_lease,
    ) -> None:
        self.config = config
        self._delays = delays
        self._outbox = outbox
        self._lease = lease
        self._session: aiohttp.ClientSession | None = None
        self._api: CustomerService | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def api(self) -> CustomerService:
        """The customer-service client (after `start`)."""
        assert self._api is not None, "Dispatcher.start() first"
        return self._api

    async def open(self) -> None:
        """Create the HTTP session and the API client, without polling."""
        c = self.config
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        tokens = AccessTokens(self._session, c.api_base, c.app_id, c.app_secret, lease=self._lease)
        self._api = CustomerService(self._session, tokens, c.api_base, delays=self._delays)

    async def start(self) -> None:
        """Open and begin polling (the database is open by now)."""
        await self.open()
        self._task = asyncio.create_task(self._loop(), name=f"wechat-outbox/{self.config.name}")

    async def stop(self) -> None:
        """Stop polling and close the session (before the database closes)."""
        if self._task is not None:
            await cancel(self._task)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("wechat/%s: outbox pass failed", self.config.name)
            await asyncio.sleep(self.config.outbound_poll_s)

    async def run_once(self) -> int:
        """One pass: resolve waiting auto-replies and send everything due; returns sends made."""
        name = self.config.name
        now = datetime.now(UTC)
        await self._outbox.reap(name, now, STALE_CLAIM_S)
        await self._outbox.resolve_waiting(name, now)
        sent = 0
        for job in await self._outbox.claim_due(name, now):
            sent += await self._deliver(job)
        return sent

    async def _deliver(self, job: Job) -> int:
        now = datetime.now(UTC)
        # Every outbox row, whoever queued it, passes here: no message after an unfollow.
        if await self._outbox.unsubscribed(job.openid):
            await self._outbox.finish(job, SKIPPED, now, reason="unsubscribed")
            return 0
        last = await self._outbox.last_inbound(job.openid, job.window_from)
        if now - last > WINDOW:
            # WeChat would answer 45015; do not spend a call (or the quota) to hear it.
            await self._outbox.finish(job, SKIPPED, now, reason="window_closed: last message 48h+")
            return 0
        try:
            result = await self.api.send_text(job.openid, job.text)
        except (TokenError, aiohttp.ClientError, TimeoutError) as exc:
            # Raised only on the way to a token, before anything was sent.
            log.warning("wechat/%s: no access_token: %r", self.config.name, exc)
            await self._later(job, None, f"token: {exc!r}")
            return 0
        now = datetime.now(UTC)
        if result.sent:
            await self._outbox.finish(job, SENT, now, code=0)
            return 1
        if not result.final:
            await self._later(job, result.code, result.reason)
            return 0
        # 45015/45047 (window closed, quota used) and other refusals: recorded, not retried.
        log.info("wechat/%s: %s not sent: %s", self.config.name, job.key, result.reason)
        reason = result.reason[:200]
        await self._outbox.finish(job, FAILED, now, code=result.code, reason=reason)
        return 0

    async def _later(self, job: Job, code: int | None, reason: str) -> None:
        now = datetime.now(UTC)
        if job.attempts >= MAX_ATTEMPTS:
            await self._outbox.finish(job, FAILED, now, code=code, reason=reason[:200])
        else:
            retry = now + RETRY_LATER * job.attempts
            await self._outbox.finish(
                job, PENDING, now, code=code, reason=reason[:200], retry_at=retry
            )
