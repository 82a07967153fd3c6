"""Subscriptions: work queues with retry tiers and parking, their fast lanes, and listeners."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from intake_hub.bus import codec
from intake_hub.bus.base import ATTEMPT, BusError, Handler, QueueSpec
from intake_hub.bus.rabbit.admin import park
from intake_hub.bus.rabbit.connection import TRANSIENT, Link
from intake_hub.bus.rabbit.messages import ATTEMPTS, int_header, message
from intake_hub.bus.rabbit.publish import InFlight, Publisher
from intake_hub.bus.rabbit.topology import QUEUE_DURABLE, Names, Topology

log = logging.getLogger(__name__)

# Deliveries each consumer takes at once from its fast lane, beside its prefetch.
FAST_PREFETCH = 4
# Loop turns that let deliveries which arrived before a cancel was confirmed start.
CANCEL_SETTLE_TURNS = 3

OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def settle(msg: AbstractIncomingMessage, *, ack: bool) -> None:
    """Ack, or requeue, `msg`; a channel already gone means the broker redelivers it anyway."""
    try:
        if ack:
            await msg.ack()
        else:
            await msg.nack(requeue=True)
    except TRANSIENT as exc:
        # The channel is gone, so the broker hands the message out again: at-least-once.
        log.warning("could not settle %s (%r); it will be redelivered", msg.message_id, exc)


class RabbitConsumer:
    """A subscription on its own channel; cancelling it returns unacked messages to the broker."""

    def __init__(
        self,
        subscriptions: Subscriptions,
        channel: AbstractChannel,
        queue: AbstractQueue,
        on_message: OnMessage,
    ) -> None:
        self._subscriptions = subscriptions
        self._channel = channel
        self._queue = queue
        self._on_message = on_message
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tag: str | None = None
        self._cancelled = False
        # The subscription to the same queue's fast lane, stopped together with this one.
        self.lane: RabbitConsumer | None = None

    async def start(self, *, no_ack: bool = False) -> None:
        """Begin consuming (manual ack unless `no_ack`)."""
        self._tag = await self._queue.consume(self._run, no_ack=no_ack)

    async def _run(self, msg: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with self._subscriptions.in_flight.busy():
                await self._on_message(msg)
        finally:
            self._tasks.discard(task)

    async def finish(self, timeout: float) -> bool:
        """Stop consuming, let handlers in flight finish and settle, then close the channel.

        Returns False when some handler was still running after `timeout` (it is abandoned,
        so the broker redelivers its message).
        """
        finished = True
        if self.lane is not None:
            finished = await self.lane.finish(timeout)
        if self._cancelled:
            return finished
        if self._tag is not None:
            with contextlib.suppress(*TRANSIENT):
                await self._queue.cancel(self._tag)
            self._tag = None
        for _ in range(CANCEL_SETTLE_TURNS):
            await asyncio.sleep(0)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            finished = finished and not pending
        await self.cancel()
        return finished

    async def cancel(self) -> None:
        """Stop consuming, abandon handlers in flight and close the channel (broker redelivers)."""
        if self.lane is not None:
            await self.lane.cancel()
        if self._cancelled:
            return
        self._cancelled = True
        if self._tag is not None:
            with contextlib.suppress(*TRANSIENT):
                await self._queue.cancel(self._tag)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(*TRANSIENT):
            await self._channel.close()
        self._subscriptions.forget(self)


class Subscriptions:
    """Every subscription of one bus: work queues with retry and parking, and listeners."""

    def __init__(
        self,
        link: Link,
        topology: Topology,
        publisher: Publisher,
        in_flight: InFlight,
        *,
        listen_prefetch: int,
    ) -> None:
        self.in_flight = in_flight
        self._link = link
        self._topology = topology
        self._publisher = publisher
        self._listen_prefetch = listen_prefetch
        self._consumers: set[RabbitConsumer] = set()
        self._consumed: dict[RabbitConsumer, str] = {}
        self._listen_count = 0

    def consumed_queues(self) -> set[str]:
        """The queues (spec names) some work consumer of this bus takes from."""
        return set(self._consumed.values())

    def forget(self, consumer: RabbitConsumer) -> None:
        """Drop a cancelled consumer."""
        self._consumers.discard(consumer)
        self._consumed.pop(consumer, None)

    async def consume(self, queue: str, handler: Handler, prefetch: int) -> RabbitConsumer:
        """Run `handler` on `queue` with manual ack, up to `prefetch` messages concurrently.

        Its fast lane is consumed beside it, `FAST_PREFETCH` at a time on its own channel,
        so a waited-on message finds a free handler while the work queue's are all busy.
        """
        names = self._topology.names(queue)
        spec = self._topology.spec(queue)

        async def on_message(msg: AbstractIncomingMessage) -> None:
            await self._handle(spec, names, msg, handler)

        consumer = await self._subscribe(queue, names.work, prefetch, on_message)
        consumer.lane = await self._subscribe(queue, names.fast, FAST_PREFETCH, on_message)
        self._consumed[consumer] = queue
        return consumer

    async def _subscribe(
        self, queue: str, name: str, prefetch: int, on_message: OnMessage
    ) -> RabbitConsumer:
        channel = await self._link.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        # Declared, not `get_queue(ensure=False)`: only a declared queue is registered with the
        # robust channel, which re-declares it and restarts its consumer after a reconnect.
        amqp_queue = await channel.declare_queue(
            name, durable=QUEUE_DURABLE, arguments=self._topology.queue_arguments(queue)[name]
        )
        return await self._start(channel, amqp_queue, on_message)

    async def _start(
        self, channel: AbstractChannel, queue: AbstractQueue, on_message: OnMessage
    ) -> RabbitConsumer:
        consumer = RabbitConsumer(self, channel, queue, on_message)
        await consumer.start()
        self._consumers.add(consumer)
        return consumer

    async def _handle(
        self, spec: QueueSpec, names: Names, msg: AbstractIncomingMessage, handler: Handler
    ) -> None:
        attempts = int_header(dict(msg.headers), ATTEMPTS) + 1
        try:
            env = codec.decode(msg.body)
        except ValueError as exc:
            # Undecodable input never gets better by waiting: park it at once.
            parking = park(self._publisher, names.dead, msg, f"undecodable: {exc}", 1)
            await self._follow_up(msg, parking)
            return
        token = ATTEMPT.set(attempts)
        try:
            await handler(env)
        except Exception as exc:
            if attempts < spec.retry.max_attempts:
                delay = spec.retry.delays[attempts - 1]
                log.warning("retrying %s on %s in %.2fs: %r", env.id, spec.name, delay, exc)
                retry = message(msg.body, msg.message_id, {ATTEMPTS: attempts})
                tier = names.tiers[attempts - 1]
                await self._follow_up(msg, self._publisher.to_queue(tier, retry))
            else:
                log.error("dead-lettering %s from %s: %r", env.id, spec.name, exc)
                parking = park(self._publisher, names.dead, msg, repr(exc), attempts)
                await self._follow_up(msg, parking)
            return
        finally:
            ATTEMPT.reset(token)
        await settle(msg, ack=True)

    async def _follow_up(self, msg: AbstractIncomingMessage, publish: Awaitable[None]) -> None:
        """Ack `msg` only once its retry or parking copy is confirmed; else requeue it."""
        try:
            await publish
        except BusError:
            log.exception("could not pass %s on; returning it to its queue", msg.message_id)
            await settle(msg, ack=False)
            return
        await settle(msg, ack=True)

    async def listen(self, node: str, topic: str, handler: Handler) -> RabbitConsumer:
        """Subscribe process `node` alone to exactly `topic` (exclusive, auto-delete, no retry)."""
        channel = await self._link.connection.channel()
        await channel.set_qos(prefetch_count=self._listen_prefetch)
        name = self._topology.reply_queue(node, self._listen_count)
        self._listen_count += 1
        queue = await channel.declare_queue(name, durable=False, exclusive=True, auto_delete=True)
        # Bound on both exchanges: what is published to a listener is usually waited on.
        await queue.bind(self._topology.exchange, routing_key=topic)
        await queue.bind(self._topology.fast_exchange, routing_key=topic)

        async def on_message(msg: AbstractIncomingMessage) -> None:
            try:
                await handler(codec.decode(msg.body))
            except Exception:
                # No retry by design: a reply nobody can take is delivered later another way.
                log.exception("listener on %s failed on %s", topic, msg.message_id)
            await settle(msg, ack=True)

        return await self._start(channel, queue, on_message)

    async def finish(self, timeout: float) -> bool:
        """Stop every subscription gracefully; False if some handler outlived `timeout`."""
        consumers = list(self._consumers)
        finished = await asyncio.gather(*(c.finish(timeout) for c in consumers))
        return all(finished)

    async def cancel(self) -> None:
        """Cancel every subscription; unacked messages are redelivered by the broker."""
        for consumer in list(self._consumers):
            await consumer.cancel()
