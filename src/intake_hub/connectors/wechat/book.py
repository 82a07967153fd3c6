"""The delivery book: WeChat's retries of one push get one ticket and the same answer.

The first delivery of a key (MsgId, or sender + time + event) claims it and emits; every
later delivery gets the answer the first recorded, waits for it (in this process on its
future, in another on its row), or takes the claim over when its holder died before
answering. An answer that misses the reply budget is "" (WeChat hears `success`), and the
reply is queued for the customer-service API instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from intake_hub.connectors.base import Request
from intake_hub.connectors.wechat.stores import Claim, DeliveryStore, NonceStore, OutboxStore
from intake_hub.envelope import Envelope
from intake_hub.periodic import Periodic

log = logging.getLogger(__name__)

_POLL_S = 0.05
# A live first delivery answers or releases within the reply budget; past it plus this
# margin (clock skew between processes, a slow commit) its holder is presumed dead.
TAKEOVER_MARGIN_S = 2.0
# Delivery rows only have to outlive WeChat's retries; every process prunes its accounts'.
DELIVERY_RETENTION = timedelta(days=1)
PRUNE_EVERY_S = 3600.0
# Nonces are kept while their timestamp is inside the window, plus this margin for a
# process whose clock runs behind the pruner's.
NONCE_MARGIN_S = 300


@dataclass
class Book:
    """One account's deliveries: who emits, what every delivery answers, and pruning."""

    instance: str
    budget_s: float
    request: Request
    deliveries: DeliveryStore
    outbox: OutboxStore
    # Seen nonces to prune along with the deliveries, and how long a timestamp is accepted.
    nonces: NonceStore | None = None
    window_s: int = 300
    _inflight: dict[str, asyncio.Future[str]] = field(default_factory=dict, init=False)
    _recording: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _pruner: Periodic = field(init=False)

    def __post_init__(self) -> None:
        self._pruner = Periodic(f"wechat-prune/{self.instance}", PRUNE_EVERY_S, self._prune)

    def remaining(self, started: float) -> float:
        """Seconds left of the reply budget for a push that arrived at `started`."""
        return max(0.0, self.budget_s - (time.perf_counter() - started))

    async def answer(self, env: Envelope, started: float) -> str:
        """Emit on the first delivery only; every delivery of it gets the first one's answer."""
        key = env.external_id
        # A second round only when the first delivery failed to emit while this one waited.
        for _ in range(2):
            claim = await self.deliveries.claim(self.instance, key, env.id, env.ticket)
            if claim.first:
                return await self._emit_first(env, started)
            if claim.answer is not None:
                return claim.answer
            answer = await self._await_first(env, claim, started)
            if answer is not None:
                return answer
        return ""

    async def _emit_first(self, env: Envelope, started: float, attempt: int = 0) -> str:
        instance, key = self.instance, env.external_id
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            try:
                reply = await self.request(env, self.remaining(started))
            except Exception:
                # Nothing reached the bus: let WeChat's retry be a first delivery again.
                await self.deliveries.release(instance, key, attempt)
                raise
            answer = reply.text if reply is not None and reply.kind != "none" else ""
            if reply is None:
                await self._expect_late_reply(env)
            done.set_result(answer)
            # Recorded after the answer goes out: the write waits for the database behind
            # the batch writer, and WeChat waits for nothing. A retry here is answered from
            # `done`, one elsewhere polls the row; after a crash, a retry takes over.
            task = asyncio.create_task(self._record(key, answer))
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)
            return answer
        finally:
            del self._inflight[key]
            if not done.done():
                done.cancel()

    async def _record(self, key: str, answer: str) -> None:
        try:
            await self.deliveries.record_answer(self.instance, key, answer)
        except Exception:
            log.exception("wechat/%s: could not record the answer to %s", self.instance, key)

    async def _expect_late_reply(self, env: Envelope) -> None:
        """Out of time: the reply goes out by the customer-service API once it is stored."""
        try:
            await self.outbox.expect_reply(
                self.instance,
                env.id,
                env.customer.key,
                env.ticket,
                env.received_at,
                datetime.now(UTC),
            )
        except Exception:
            log.exception("wechat/%s: could not queue the late reply to %s", self.instance, env.id)

    async def _await_first(self, env: Envelope, claim: Claim, started: float) -> str | None:
        """The first delivery's answer ("" once out of time); None if it failed to emit."""
        instance, key = self.instance, env.external_id
        first = self._inflight.get(key)
        if first is not None:
            await asyncio.wait({first}, timeout=self.remaining(started))
            if first.cancelled():
                return None
            return first.result() if first.done() else ""
        # The first delivery is in another process: watch its row.
        grace = self.budget_s + TAKEOVER_MARGIN_S
        row: Claim | None = claim
        while row is not None:
            if row.answer is not None:
                return row.answer
            if row.stale(grace) and await self.deliveries.take_over(instance, key, row.attempt):
                return await self._take_over(env, row, started)
            left = self.remaining(started)
            if left <= 0:
                return ""
            await asyncio.sleep(min(_POLL_S, left))
            row = await self.deliveries.lookup(instance, key)
        return None

    async def _take_over(self, env: Envelope, row: Claim, started: float) -> str:
        """Emit again for a holder that died before answering, as the envelope it claimed."""
        log.warning(
            "wechat/%s: taking over %s, left pending by attempt %d",
            self.instance,
            env.external_id,
            row.attempt,
        )
        # The same id lets persistence drop a copy that did reach the bus; the same ticket
        # number keeps what the customer may already have been told.
        same = env.model_copy(update={"id": row.envelope_id, "ticket": row.ticket})
        return await self._emit_first(same, started, row.attempt + 1)

    def start(self) -> None:
        """Begin pruning old delivery and nonce rows, now and hourly."""
        self._pruner.start()

    async def stop(self) -> None:
        """Stop pruning; wait for the answers still being recorded."""
        await self._pruner.stop()
        if self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)

    async def _prune(self) -> None:
        try:
            before = datetime.now(UTC) - DELIVERY_RETENTION
            if gone := await self.deliveries.prune(self.instance, before):
                log.info("wechat/%s: forgot %d old deliveries", self.instance, gone)
        except Exception:
            log.exception("wechat/%s: pruning deliveries failed", self.instance)
        await self.prune_nonces()

    async def prune_nonces(self) -> int:
        """Forget nonces whose timestamp no request can carry any more; how many went."""
        if self.nonces is None:
            return 0
        before = int(time.time()) - self.window_s - NONCE_MARGIN_S
        try:
            gone = await self.nonces.prune(self.instance, before)
        except Exception:
            log.exception("wechat/%s: pruning nonces failed", self.instance)
            return 0
        if gone:
            log.info("wechat/%s: forgot %d old nonces", self.instance, gone)
        return gone
