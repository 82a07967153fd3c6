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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika import DeliveryMode, ExchangeType
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.exceptions import (
    AMQPChannelError,
    AMQPError,
    ChannelInvalidStateError,
    DeliveryError,
    ProbableAuthenticationError,
    PublishError,
)

from intake_hub import topics
from intake_hub.bus import codec
from intake_hub.bus.base import (
    ATTEMPT,
    BrokerUnreachable,
    BusError,
    DeadLetter,
    Handler,
    QueueSpec,
    Unroutable,
)
from intake_hub.envelope import Envelope

log = logging.getLogger(__name__)

ATTEMPTS = "x-intake-attempts"
ERROR = "x-intake-error"
DEAD_ID = "x-intake-dead-id"
DEAD_AT = "x-intake-dead-at"

ERROR_MAX_CHARS = 2000
DEAD_LIST_MAX = 10_000
PUBLISH_TIMEOUT_S = 30.0
DRAIN_POLL_S = 0.02
LISTEN_PREFETCH = 64
# Deliveries each consumer takes at once from its fast lane, beside its prefetch.
FAST_PREFETCH = 4
FAST_SUFFIX = ".fast"
EXCHANGE_TYPE = ExchangeType.TOPIC
QUEUE_DURABLE = True

# A lost connection, a channel closed under us, or a confirm that never came: worth re-sending.
_TRANSIENT = (ConnectionError, AMQPChannelError, ChannelInvalidStateError, TimeoutError)


def _truncate(text: str) -> str:
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def _int_header(headers: dict[str, Any], key: str) -> int:
    value = headers.get(key)
    return int(value) if isinstance(value, int | float) else 0


def _str_header(headers: dict[str, Any], key: str) -> str | None:
    value = headers.get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def delivery_limit_arguments(rabbitmq_major: int) -> dict[str, int]:
    """What a parking queue needs so the broker never drops a message over its delivery limit.

    RabbitMQ 4 gives quorum queues a default delivery limit of 20 and counts every requeue;
    -1 lifts it. RabbitMQ 3 has no limit by default and reads -1 as "drop at the first
    return", so there the argument must be left out.
    """
    return {"x-delivery-limit": -1} if rabbitmq_major >= 4 else {}


def _message(body: bytes, message_id: str | None, headers: dict[str, Any]) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        delivery_mode=DeliveryMode.PERSISTENT,
        content_type="application/json",
        message_id=message_id,
        headers=headers,
    )


@dataclass(frozen=True)
class _Names:
    work: str
    dead: str
    fast: str
    tiers: tuple[str, ...]  # one per attempt that may still fail, tiers may repeat


class _Tracker:
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


class RabbitConsumer:
    """A subscription on its own channel; cancelling it returns unacked messages to the broker."""

    def __init__(
        self,
        bus: RabbitBus,
        channel: AbstractChannel,
        queue: AbstractQueue,
        on_message: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        self._bus = bus
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

    async def _run(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with self._bus._tracker.busy():
                await self._on_message(message)
        finally:
            self._tasks.discard(task)

    async def finish(self, timeout: float) -> None:
        """Stop consuming, let handlers in flight finish and settle, then close the channel."""
        if self.lane is not None:
            await self.lane.finish(timeout)
        if self._cancelled:
            return
        if self._tag is not None:
            with contextlib.suppress(*_TRANSIENT):
                await self._queue.cancel(self._tag)
            self._tag = None
        # Deliveries that arrived before the cancel was confirmed start their handlers now.
        for _ in range(3):
            await asyncio.sleep(0)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        await self.cancel()

    async def cancel(self) -> None:
        """Stop consuming, abandon handlers in flight and close the channel (broker redelivers)."""
        if self.lane is not None:
            await self.lane.cancel()
        if self._cancelled:
            return
        self._cancelled = True
        if self._tag is not None:
            with contextlib.suppress(*_TRANSIENT):
                await self._queue.cancel(self._tag)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(*_TRANSIENT):
            await self._channel.close()
        self._bus._consumers.discard(self)
        self._bus._consumed.pop(self, None)


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
        self._url = url
        self._ns = namespace
        self._listen_prefetch = prefetch
        self._publish_timeout = publish_timeout
        self._exchange_name = namespace + topics.EXCHANGE
        self._fast_name = self._exchange_name + FAST_SUFFIX
        self._specs: dict[str, QueueSpec] = {}
        self._consumers: set[RabbitConsumer] = set()
        self._consumed: dict[RabbitConsumer, str] = {}
        self._tracker = _Tracker()
        self._admin_lock = asyncio.Lock()
        self._listen_count = 0
        self._conn: AbstractRobustConnection | None = None
        self._pub: AbstractChannel | None = None
        self._admin: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._fast: AbstractExchange | None = None
        self._unlimited_delivery: dict[str, int] = {}

    # -- connection -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, open the publishing and topology channels, declare the exchange.

        Raises `BrokerUnreachable` when the first connection fails for any reason but
        refused credentials (those are a configuration error, not an outage).
        """
        try:
            self._conn = await aio_pika.connect_robust(
                self._url,
                reconnect_interval=1.0,
                client_properties={"connection_name": f"intake-hub/{self.node}"},
            )
        except ProbableAuthenticationError:
            raise
        except (AMQPError, OSError, TimeoutError) as exc:
            raise BrokerUnreachable(f"cannot connect to the broker: {exc!r}") from exc
        self._pub = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        self._admin = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._pub.declare_exchange(
            self._exchange_name, EXCHANGE_TYPE, durable=True
        )
        self._fast = await self._pub.declare_exchange(
            self._fast_name, EXCHANGE_TYPE, durable=True
        )
        underlay = await self._admin.get_underlay_channel()
        version = underlay.connection.server_properties.get("version", "")
        if isinstance(version, bytes):
            version = version.decode()
        major = str(version).split(".", 1)[0]
        self._unlimited_delivery = delivery_limit_arguments(int(major) if major.isdigit() else 3)

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (False while `connect_robust` reconnects)."""
        return self._conn is not None and self._conn.connected.is_set()

    def _channels(self) -> tuple[AbstractRobustConnection, AbstractChannel, AbstractExchange]:
        if self._conn is None or self._admin is None or self._exchange is None:
            raise BusError("RabbitBus.start() was not called")
        return self._conn, self._admin, self._exchange

    async def finish(self, timeout: float) -> None:
        """Stop every subscription gracefully: no new messages, those in flight finish."""
        consumers = list(self._consumers)
        await asyncio.gather(*(c.finish(timeout) for c in consumers))

    async def close(self) -> None:
        """Cancel every subscription and disconnect; unacked messages are redelivered later."""
        for consumer in list(self._consumers):
            await consumer.cancel()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- topology ---------------------------------------------------------------------

    def _names(self, queue: str) -> _Names:
        spec = self._specs.get(queue)
        if spec is None:
            raise BusError(f"queue {queue!r} was not declared on this bus")
        work = self._ns + spec.name
        tiers = tuple(f"{work}.retry.{round(d * 1000)}ms" for d in spec.retry.delays)
        return _Names(work=work, dead=f"{work}.dead", fast=work + FAST_SUFFIX, tiers=tiers)

    def queue_arguments(self, queue: str) -> dict[str, dict[str, Any]]:
        """The arguments of every broker queue behind `queue`, by broker queue name."""
        names = self._names(queue)
        to_dead = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.dead,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        args: dict[str, dict[str, Any]] = {
            names.work: {"x-queue-type": "quorum", **to_dead},
            names.fast: {"x-queue-type": "quorum", **to_dead},
            names.dead: {"x-queue-type": "quorum", **self._unlimited_delivery},
        }
        for tier, delay in zip(names.tiers, self._specs[queue].retry.delays, strict=True):
            args[tier] = {
                "x-queue-type": "quorum",
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.work,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        return args

    def register(self, spec: QueueSpec) -> None:
        """Know `spec` without touching the broker (`declare` does this, and declares)."""
        self._specs[spec.name] = spec

    def bindings(self, queue: str) -> list[tuple[str, str, str]]:
        """(exchange, broker queue, routing key) of every binding behind `queue`."""
        names, keys = self._names(queue), self._specs[queue].bindings
        return [(self._exchange_name, names.work, key) for key in keys] + [
            (self._fast_name, names.fast, key) for key in keys
        ]

    def definitions(self, *, vhost: str = "/", rabbitmq_major: int = 4) -> dict[str, Any]:
        """RabbitMQ definitions (exchange, queues, bindings) of every registered spec.

        The same arguments `declare` sends, in the format `rabbitmqctl import_definitions`
        and the management plugin read.
        """
        queues: list[dict[str, Any]] = []
        bindings: list[dict[str, Any]] = []
        saved = self._unlimited_delivery
        self._unlimited_delivery = delivery_limit_arguments(rabbitmq_major)
        try:
            for spec in self._specs:
                for name, arguments in self.queue_arguments(spec).items():
                    queues.append(
                        {
                            "name": name,
                            "vhost": vhost,
                            "durable": QUEUE_DURABLE,
                            "auto_delete": False,
                            "arguments": arguments,
                        }
                    )
                for source, queue, key in self.bindings(spec):
                    bindings.append(
                        {
                            "source": source,
                            "vhost": vhost,
                            "destination": queue,
                            "destination_type": "queue",
                            "routing_key": key,
                            "arguments": {},
                        }
                    )
        finally:
            self._unlimited_delivery = saved
        exchanges: list[dict[str, Any]] = [
            {
                "name": name,
                "vhost": vhost,
                "type": EXCHANGE_TYPE.value,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in (self._exchange_name, self._fast_name)
        ]
        return {
            "vhosts": [{"name": vhost}],
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
        }

    async def declare(self, spec: QueueSpec) -> None:
        """Declare the work queue, its fast lane, bindings, retry tiers and parking queue."""
        _, admin, _ = self._channels()
        self.register(spec)
        names = self._names(spec.name)
        arguments = self.queue_arguments(spec.name)
        # The parking queue first: the others dead-letter into it.
        queues: dict[str, AbstractQueue] = {}
        for name in (names.dead, *dict.fromkeys(names.tiers), names.work, names.fast):
            queues[name] = await admin.declare_queue(
                name, durable=QUEUE_DURABLE, arguments=arguments[name]
            )
        for source, name, key in self.bindings(spec.name):
            await queues[name].bind(source, routing_key=key)

    async def delete_topology(self) -> None:
        """Delete every queue this instance declared, and the exchanges (tests, uninstall)."""
        _, admin, exchange = self._channels()
        for spec in list(self._specs):
            for name in self.queue_arguments(spec):
                await admin.queue_delete(name, if_unused=False, if_empty=False)
        self._specs.clear()
        await admin.exchange_delete(exchange.name, if_unused=False)
        await admin.exchange_delete(self._fast_name, if_unused=False)

    # -- publishing -------------------------------------------------------------------

    async def publish(self, topic: str, env: Envelope) -> None:
        """Publish persistently to the exchange; returns once the broker confirmed it.

        Raises `Unroutable` when no queue is bound to `topic`. A publish cut off by a lost
        connection is re-sent until confirmed or `publish_timeout` passes (`BusError`).
        A message someone waits on (`reply_to` set) goes to the fast lane.
        """
        _, _, exchange = self._channels()
        if env.reply_to is not None and self._fast is not None:
            exchange = self._fast
        message = _message(codec.encode(env), str(env.id), {})
        await self._publish(exchange, topic, message)

    async def _publish_direct(self, queue: str, message: aio_pika.Message) -> None:
        assert self._pub is not None
        await self._publish(self._pub.default_exchange, queue, message)

    async def _publish(
        self, exchange: AbstractExchange, routing_key: str, message: aio_pika.Message
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        delay = 0.05
        with self._tracker.busy():
            while True:
                try:
                    await exchange.publish(
                        message,
                        routing_key,
                        mandatory=True,
                        timeout=max(deadline - loop.time(), 0.001),
                    )
                    return
                except PublishError as exc:
                    raise Unroutable(f"no queue is bound to {routing_key!r}") from exc
                except DeliveryError as exc:
                    raise BusError(f"the broker refused the message for {routing_key!r}") from exc
                except _TRANSIENT as exc:
                    if loop.time() >= deadline:
                        raise BusError(f"publish to {routing_key!r} not confirmed") from exc
                    log.warning("re-sending to %s after %r", routing_key, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)

    # -- consuming --------------------------------------------------------------------

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> RabbitConsumer:
        """Run `handler` on `queue` with manual ack, up to `prefetch` messages concurrently.

        Its fast lane is consumed beside it, `FAST_PREFETCH` at a time on its own channel,
        so a waited-on message finds a free handler while the work queue's are all busy.
        """
        names = self._names(queue)
        spec = self._specs[queue]

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(spec, names, message, handler)

        consumer = await self._subscribe(queue, names.work, prefetch, on_message)
        consumer.lane = await self._subscribe(queue, names.fast, FAST_PREFETCH, on_message)
        self._consumed[consumer] = queue
        return consumer

    async def _subscribe(
        self,
        queue: str,
        name: str,
        prefetch: int,
        on_message: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> RabbitConsumer:
        conn, _, _ = self._channels()
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=prefetch)
        # Declared, not `get_queue(ensure=False)`: only a declared queue is registered with the
        # robust channel, which re-declares it and restarts its consumer after a reconnect.
        amqp_queue = await channel.declare_queue(
            name, durable=QUEUE_DURABLE, arguments=self.queue_arguments(queue)[name]
        )
        consumer = RabbitConsumer(self, channel, amqp_queue, on_message)
        await consumer.start()
        self._consumers.add(consumer)
        return consumer

    async def _handle(
        self, spec: QueueSpec, names: _Names, message: AbstractIncomingMessage, handler: Handler
    ) -> None:
        headers = dict(message.headers)
        attempts = _int_header(headers, ATTEMPTS) + 1
        try:
            env = codec.decode(message.body)
        except ValueError as exc:
            # Undecodable input never gets better by waiting: park it at once.
            await self._follow_up(message, self._park(names, message, f"undecodable: {exc}", 1))
            return
        token = ATTEMPT.set(attempts)
        try:
            await handler(env)
        except Exception as exc:
            if attempts < spec.retry.max_attempts:
                delay = spec.retry.delays[attempts - 1]
                log.warning("retrying %s on %s in %.2fs: %r", env.id, spec.name, delay, exc)
                retry = _message(message.body, message.message_id, {ATTEMPTS: attempts})
                await self._follow_up(
                    message, self._publish_direct(names.tiers[attempts - 1], retry)
                )
            else:
                log.error("dead-lettering %s from %s: %r", env.id, spec.name, exc)
                await self._follow_up(message, self._park(names, message, repr(exc), attempts))
            return
        finally:
            ATTEMPT.reset(token)
        await self._settle(message, ack=True)

    async def _park(
        self, names: _Names, message: AbstractIncomingMessage, error: str, attempts: int
    ) -> None:
        headers = {
            ATTEMPTS: attempts,
            ERROR: _truncate(error),
            DEAD_ID: uuid.uuid4().hex,
            DEAD_AT: time.time_ns() // 1000,
        }
        await self._publish_direct(names.dead, _message(message.body, message.message_id, headers))

    async def _follow_up(self, message: AbstractIncomingMessage, publish: Awaitable[None]) -> None:
        """Ack `message` only once its retry or parking copy is confirmed; else requeue it."""
        try:
            await publish
        except BusError:
            log.exception("could not pass %s on; returning it to its queue", message.message_id)
            await self._settle(message, ack=False)
            return
        await self._settle(message, ack=True)

    async def _settle(self, message: AbstractIncomingMessage, *, ack: bool) -> None:
        try:
            if ack:
                await message.ack()
            else:
                await message.nack(requeue=True)
        except _TRANSIENT as exc:
            # The channel is gone, so the broker hands the message out again: at-least-once.
            log.warning("could not settle %s (%r); it will be redelivered", message.message_id, exc)

    async def listen(self, topic: str, handler: Handler) -> RabbitConsumer:
        """Subscribe this process alone to exactly `topic` (exclusive, auto-delete, no retry)."""
        conn, _, exchange = self._channels()
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=self._listen_prefetch)
        base = self._ns + topics.reply_queue(self.node)
        name = base if self._listen_count == 0 else f"{base}.{self._listen_count}"
        self._listen_count += 1
        queue = await channel.declare_queue(name, durable=False, exclusive=True, auto_delete=True)
        # Bound on both exchanges: what is published to a listener is usually waited on.
        await queue.bind(exchange.name, routing_key=topic)
        await queue.bind(self._fast_name, routing_key=topic)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                await handler(codec.decode(message.body))
            except Exception:
                # No retry by design: a reply nobody can take is delivered later another way.
                log.exception("listener on %s failed on %s", topic, message.message_id)
            await self._settle(message, ack=True)

        consumer = RabbitConsumer(self, channel, queue, on_message)
        await consumer.start()
        self._consumers.add(consumer)
        return consumer

    # -- dead letters -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _parked(
        self, queue: str
    ) -> AsyncIterator[list[tuple[DeadLetter, AbstractIncomingMessage]]]:
        """Take every parked message unacked; whatever the caller did not settle goes back."""
        conn, _, _ = self._channels()
        names = self._names(queue)
        async with self._admin_lock:
            channel = await conn.channel()
            try:
                amqp_queue = await channel.get_queue(names.dead, ensure=False)
                taken: list[tuple[DeadLetter, AbstractIncomingMessage]] = []
                while len(taken) < DEAD_LIST_MAX:
                    message = await amqp_queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    taken.append((self._dead_letter(queue, message), message))
                # Stable: ties keep queue order.
                taken.sort(key=lambda pair: pair[0].dead_at)
                try:
                    yield taken
                finally:
                    for _, message in taken:
                        if not message.processed:
                            await message.nack(requeue=True)
            finally:
                with contextlib.suppress(*_TRANSIENT):
                    await channel.close()

    def _dead_letter(self, queue: str, message: AbstractIncomingMessage) -> DeadLetter:
        headers = dict(message.headers)
        dead_at_us = _int_header(headers, DEAD_AT)
        # Parked by the broker itself (delivery limit): none of our headers, x-death instead.
        dead_id = _str_header(headers, DEAD_ID) or (
            f"{message.message_id}:{_str_header(headers, 'x-first-death-reason')}"
        )
        error = _str_header(headers, ERROR) or (
            f"dead-lettered by the broker: {_str_header(headers, 'x-first-death-reason')}"
        )
        dead_at = (
            datetime.fromtimestamp(dead_at_us / 1_000_000, UTC)
            if dead_at_us
            else (message.timestamp or datetime.now(UTC))
        )
        if dead_at.tzinfo is None:
            dead_at = dead_at.replace(tzinfo=UTC)
        return DeadLetter(
            id=dead_id,
            queue=queue,
            body=message.body,
            error=error,
            attempts=_int_header(headers, ATTEMPTS),
            dead_at=dead_at,
        )

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The parked messages of `queue`, oldest first, left in place.

        Listing takes each message unacked and returns it, so two operators listing the
        same queue at the same moment may each see part of it.
        """
        async with self._parked(queue) as taken:
            return [dead for dead, _ in taken]

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Re-publish parked messages to their work queue with a fresh retry budget."""
        names = self._names(queue)
        count = 0
        async with self._parked(queue) as taken:
            for dead, message in taken:
                if ids is not None and dead.id not in ids:
                    continue
                fresh = _message(message.body, message.message_id, {})
                await self._publish_direct(names.work, fresh)
                await message.ack()
                count += 1
        return count

    async def purge_dead(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Drop parked messages (all, or those with `ids`) for good."""
        count = 0
        async with self._parked(queue) as taken:
            for dead, message in taken:
                if ids is None or dead.id in ids:
                    await message.ack()
                    count += 1
        return count

    # -- observation ------------------------------------------------------------------

    async def _ready(self, name: str) -> int:
        _, admin, _ = self._channels()
        if not self.connected:
            # Without this the passive declare would wait for the reconnect.
            raise BrokerUnreachable("not connected to the broker")
        underlay = await admin.get_underlay_channel()
        ok = await underlay.queue_declare(name, passive=True)
        return int(ok.message_count or 0)

    async def depth(self, queue: str) -> int:
        """Messages ready in `queue`, its fast lane and its retry tiers (not those in flight)."""
        names = self._names(queue)
        lanes = (names.work, names.fast, *dict.fromkeys(names.tiers))
        counts = [await self._ready(n) for n in lanes]
        return sum(counts)

    async def _quiet(self) -> bool:
        if self._tracker.count:
            return False
        for queue in set(self._consumed.values()):
            if await self.depth(queue):
                return False
        return self._tracker.count == 0

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


__all__ = ["RabbitBus", "RabbitConsumer"]
