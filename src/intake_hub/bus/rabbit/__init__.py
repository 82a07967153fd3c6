"""The RabbitMQ bus (aio-pika): the same contract as the in-process bus, durable across processes.

Topology per `QueueSpec`, under one durable topic exchange:

- `<ns><name>`: the work queue, a quorum queue bound to the spec's topics. It dead-letters
  (at-least-once) to its parking queue, so a message over the broker's delivery limit
  (RabbitMQ 4: 20 returns by default) is parked, never dropped.
- `<ns><name>.retry.<ms>ms`: one TTL queue per delay tier. Expired messages dead-letter
  (at-least-once) through the default exchange to the work queue only, so a retry never
  fans out to the other queues bound to the same topic.
- `<ns><name>.dead`: the parking queue, listed, replayed and purged by the operator.
- `<ns><name>.fast`: the fast lane, bound like the work queue but on the fast exchange
  `<ns>intake_hub.fast`, where messages someone waits on (`reply_to` set: a connector's
  passive reply) are published. Every consumer also takes from it, on a channel of its
  own, so such a message never queues behind the work queue's backlog. RabbitMQ 3 quorum
  queues know no priorities, hence a queue rather than a priority.

Delivery guarantees are at-least-once: a publish is re-sent after a lost confirm, so
consumers must be idempotent (persistence is, by its unique keys).

`RabbitBus` composes the parts, one module each: `topology` (names, arguments, exported
definitions; no I/O), `connection` (the robust connection and its channels), `publish`
(confirmed, re-sent publishes), `consume` (subscriptions, retry tiers, listeners),
`admin` (parking queues: park, list, replay, purge) and `messages` (the persistent message
and its headers).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from typing import Any

from intake_hub.bus.base import DeadLetter, Handler, QueueSpec
from intake_hub.bus.rabbit.admin import DeadLetters
from intake_hub.bus.rabbit.connection import Link
from intake_hub.bus.rabbit.consume import RabbitConsumer, Subscriptions
from intake_hub.bus.rabbit.publish import PUBLISH_TIMEOUT_S, InFlight, Publisher
from intake_hub.bus.rabbit.topology import QUEUE_DURABLE, Topology, delivery_limit_arguments
from intake_hub.envelope import Envelope

DRAIN_POLL_S = 0.02
LISTEN_PREFETCH = 64


class RabbitBus:
    """The `Bus` on RabbitMQ: quorum queues, TTL retry tiers, parking queues, confirmed publishes.

    `namespace` prefixes the exchange and every queue, so tests (or tenants) on one broker
    never see each other. `prefetch` is the QoS of `listen` subscriptions; `consume` takes
    its own.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "",
        prefetch: int = LISTEN_PREFETCH,
        publish_timeout: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self.node = uuid.uuid4().hex
        self._ns = namespace
        self._topology = Topology(namespace)
        self._link = Link(url, self.node)
        self._in_flight = InFlight()
        self._publisher = Publisher(self._link, self._in_flight, publish_timeout)
        self._subscriptions = Subscriptions(
            self._link, self._topology, self._publisher, self._in_flight, listen_prefetch=prefetch
        )
        self._dead = DeadLetters(self._link, self._topology, self._publisher)

    # -- connection -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, open the publishing and topology channels, declare the exchanges.

        Raises `BrokerUnreachable` when the first connection fails for any reason but
        refused credentials (those are a configuration error, not an outage).
        """
        self._topology.rabbitmq_major = await self._link.open(self._topology)

    @property
    def durable(self) -> bool:
        """Messages live in the broker, beyond this process: a publishing edge may spool."""
        return True

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (False while `connect_robust` reconnects)."""
        return self._link.connected

    async def finish(self, timeout: float) -> bool:
        """Stop every subscription gracefully: no new messages, those in flight finish.

        Queued messages stay in the broker for the other consumers. False if a handler was
        still running after `timeout` (abandoned: the broker redelivers its message).
        """
        return await self._subscriptions.finish(timeout)

    async def close(self) -> None:
        """Cancel every subscription and disconnect; unacked messages are redelivered later."""
        await self._subscriptions.cancel()
        await self._link.close()

    # -- topology ---------------------------------------------------------------------

    def register(self, spec: QueueSpec) -> None:
        """Know `spec` without touching the broker (`declare` does this, and declares)."""
        self._topology.register(spec)

    def queue_arguments(self, queue: str) -> dict[str, dict[str, Any]]:
        """The arguments of every broker queue behind `queue`, by broker queue name."""
        return self._topology.queue_arguments(queue)

    def bindings(self, queue: str) -> list[tuple[str, str, str]]:
        """(exchange, broker queue, routing key) of every binding behind `queue`."""
        return self._topology.bindings(queue)

    def definitions(self, *, vhost: str = "/", rabbitmq_major: int = 4) -> dict[str, Any]:
        """RabbitMQ definitions (exchanges, queues, bindings) of every registered spec."""
        return self._topology.definitions(vhost=vhost, rabbitmq_major=rabbitmq_major)

    async def declare(self, spec: QueueSpec) -> None:
        """Declare the work queue, its fast lane, bindings, retry tiers and parking queue."""
        admin = self._link.admin
        self.register(spec)
        arguments = self.queue_arguments(spec.name)
        queues = {
            name: await admin.declare_queue(name, durable=QUEUE_DURABLE, arguments=arguments[name])
            for name in self._topology.names(spec.name).declaration_order()
        }
        for source, name, key in self.bindings(spec.name):
            await queues[name].bind(source, routing_key=key)

    async def delete_topology(self) -> None:
        """Delete every queue this instance declared, and the exchanges (tests, uninstall)."""
        admin, topology = self._link.admin, self._topology
        for spec in list(topology.specs):
            for name in topology.queue_arguments(spec):
                await admin.queue_delete(name, if_unused=False, if_empty=False)
        topology.specs.clear()
        await admin.exchange_delete(topology.exchange, if_unused=False)
        await admin.exchange_delete(topology.fast_exchange, if_unused=False)

    # -- messages ---------------------------------------------------------------------

    async def publish(self, topic: str, env: Envelope) -> None:
        """Publish persistently to the exchange; returns once the broker confirmed it.

        Raises `Unroutable` when no queue is bound to `topic`. A publish cut off by a lost
        connection is re-sent until confirmed or `publish_timeout` passes (`BusError`).
        A message someone waits on (`reply_to` set) goes to the fast lane.
        """
        await self._publisher.publish(topic, env)

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> RabbitConsumer:
        """Run `handler` on `queue` and its fast lane with manual ack, retry tiers and parking."""
        return await self._subscriptions.consume(queue, handler, prefetch)

    async def listen(self, topic: str, handler: Handler) -> RabbitConsumer:
        """Subscribe this process alone to exactly `topic` (exclusive, auto-delete, no retry)."""
        return await self._subscriptions.listen(self.node, topic, handler)

    # -- dead letters -----------------------------------------------------------------

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The parked messages of `queue`, oldest first, left in place."""
        return await self._dead.list(queue)

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Re-publish parked messages to their work queue with a fresh retry budget."""
        return await self._dead.replay(queue, ids)

    async def purge_dead(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Drop parked messages (all, or those with `ids`) for good."""
        return await self._dead.purge(queue, ids)

    # -- observation ------------------------------------------------------------------

    async def depth(self, queue: str) -> int:
        """Messages ready in `queue`, its fast lane and its retry tiers (not those in flight)."""
        lanes = self._topology.names(queue).ready_lanes()
        counts = [await self._link.ready(name) for name in lanes]
        return sum(counts)

    async def _quiet(self) -> bool:
        if self._in_flight.count:
            return False
        for queue in self._subscriptions.consumed_queues():
            if await self.depth(queue):
                return False
        return self._in_flight.count == 0

    async def drain(self, timeout: float) -> bool:
        """Wait until this process has nothing in flight and the queues it consumes are empty.

        Unlike the in-process bus, queues this process does not consume are not waited for:
        their messages are durable in the broker and another process takes them. Quiet must
        be seen twice in a row, so a delivery still on the wire is not missed.
        """
        try:
            async with asyncio.timeout(timeout):
                quiet_in_a_row = 0
                while quiet_in_a_row < 2:
                    quiet_in_a_row = quiet_in_a_row + 1 if await self._quiet() else 0
                    await asyncio.sleep(DRAIN_POLL_S)
        except TimeoutError:
            return False
        return True


__all__ = ["RabbitBus", "RabbitConsumer", "delivery_limit_arguments"]
