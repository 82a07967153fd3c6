"""Confirmed publishing, re-sent across a lost connection, and the count of work in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import aio_pika
from aio_pika.abc import AbstractExchange
from aiormq.exceptions import DeliveryError, PublishError

from intake_hub.bus import codec
from intake_hub.bus.base import BusError, Unroutable
from intake_hub.bus.rabbit.connection import TRANSIENT, Link
from intake_hub.bus.rabbit.messages import message
from intake_hub.envelope import Envelope

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30.0
RESEND_FIRST_S = 0.05
RESEND_MAX_S = 1.0


class InFlight:
    """Counts what this process has in flight (handlers and unconfirmed publishes)."""

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Count the enclosed work as in flight."""
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


class Publisher:
    """Publishes on the link's confirmed channel; returns once the broker confirmed."""

    def __init__(self, link: Link, in_flight: InFlight, timeout: float) -> None:
        self._link = link
        self._in_flight = in_flight
        self._timeout = timeout

    async def publish(self, topic: str, env: Envelope) -> None:
        """Publish `env` to the topic exchange, or to the fast one when someone waits on it."""
        link = self._link
        exchange = link.fast_exchange if env.reply_to is not None else link.exchange
        await self.send(exchange, topic, message(codec.encode(env), str(env.id), {}))

    async def to_queue(self, queue: str, msg: aio_pika.Message) -> None:
        """Publish straight to the broker queue `queue` (default exchange)."""
        await self.send(self._link.publishing.default_exchange, queue, msg)

    async def send(
        self, exchange: AbstractExchange, routing_key: str, msg: aio_pika.Message
    ) -> None:
        """Publish `mandatory`, re-sending after a lost connection until confirmed or timed out.

        Raises `Unroutable` when nothing is bound to `routing_key`, `BusError` when the broker
        refuses the message or no confirm came within the timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        delay = RESEND_FIRST_S
        with self._in_flight.busy():
            while True:
                try:
                    await exchange.publish(
                        msg,
                        routing_key,
                        mandatory=True,
                        timeout=max(deadline - loop.time(), 0.001),
                    )
                    return
                except PublishError as exc:
                    raise Unroutable(f"no queue is bound to {routing_key!r}") from exc
                except DeliveryError as exc:
                    raise BusError(f"the broker refused the message for {routing_key!r}") from exc
                except TRANSIENT as exc:
                    if loop.time() >= deadline:
                        raise BusError(f"publish to {routing_key!r} not confirmed") from exc
                    log.warning("re-sending to %s after %r", routing_key, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RESEND_MAX_S)
