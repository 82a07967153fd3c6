"""What connectors see of the core: emit an envelope, or emit it and wait for its auto-reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

from intake_hub import topics
from intake_hub.bus import Bus, Consumer
from intake_hub.envelope import Envelope, Reply
from intake_hub.runtime.spool import Keeper

log = logging.getLogger(__name__)


class Intake:
    """Publishes connectors' envelopes and correlates auto-replies back by envelope id.

    Synchronous channels (WeChat answers inside its HTTP response) stamp `reply_to` with
    this process's node; the responder publishes its output to that node's reply topic,
    on any bus and across processes, and `request` hands it to the waiting connector.
    """

    def __init__(
        self,
        bus: Bus,
        on_received: Callable[[Envelope], None] | None = None,
        spooler: Keeper | None = None,
    ) -> None:
        self._bus = bus
        self.spooler = spooler
        self._waiting: dict[UUID, asyncio.Future[Reply]] = {}
        self._listener: Consumer | None = None
        self._on_received = on_received

    async def start(self) -> None:
        """Begin listening for this node's replies (the app starts the keeper, see `app.py`)."""
        self._listener = await self._bus.listen(topics.reply_topic(self._bus.node), self._deliver)

    async def close(self) -> None:
        """Stop listening and close the keeper; waiting connectors fall back to sending later."""
        if self._listener is not None:
            await self._listener.cancel()
        for fut in self._waiting.values():
            fut.cancel()
        if self.spooler is not None:
            await self.spooler.close()

    async def emit(self, env: Envelope) -> None:
        """Publish a new message; returns once the bus or the durable spool has it safely.

        The embedded default always writes the spool first (fsynced), so a 202 survives a crash.
        """
        if self.spooler is not None:
            await self.spooler.publish(topics.received(env.channel), env)
        else:
            await self._bus.publish(topics.received(env.channel), env)
        if self._on_received is not None:
            self._on_received(env)

    async def request(self, env: Envelope, budget: float) -> Reply | None:
        """Publish and wait up to `budget` seconds for the auto-reply; None means send it later."""
        env = env.model_copy(update={"reply_to": self._bus.node})
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[env.id] = fut
        try:
            await self.emit(env)
            async with asyncio.timeout(budget):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(env.id, None)

    async def _deliver(self, env: Envelope) -> None:
        fut = self._waiting.get(env.id)
        if fut is not None and not fut.done() and env.reply is not None:
            fut.set_result(env.reply)
