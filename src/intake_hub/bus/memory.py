"""The in-process bus: the embedded default, with the same semantics as the broker.

Every message crosses the codec, so a field that could not cross RabbitMQ fails here too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from intake_hub.bus import codec
from intake_hub.bus.base import ATTEMPT, DeadLetter, Handler, QueueSpec, Unroutable
from intake_hub.envelope import Envelope

log = logging.getLogger(__name__)

DEFAULT_MAX_DEPTH = 10_000
# Handlers per consumer, beyond its prefetch, kept for messages someone waits on.
FAST_HANDLERS = 4


@functools.lru_cache(maxsize=4096)
def topic_matches(binding: str, topic: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more."""
    return _match(tuple(binding.split(".")), tuple(topic.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


@dataclass
class _Delivery:
    body: bytes
    attempts: int = 0
    redelivered: bool = False
    # Someone waits on this message (a connector's passive reply): it takes the fast lane.
    urgent: bool = False


class _Lanes:
    """A FIFO queue with a fast lane: urgent deliveries are taken before the backlog.

    Some consumers take only from the fast lane, so an urgent delivery finds a free hand
    even while every other one is busy with the backlog.
    """

    def __init__(self) -> None:
        self._fast: collections.deque[_Delivery] = collections.deque()
        self._slow: collections.deque[_Delivery] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._fast_getters: collections.deque[asyncio.Future[None]] = collections.deque()

    def qsize(self) -> int:
        """Deliveries waiting in both lanes."""
        return len(self._fast) + len(self._slow)

    def backlog(self) -> int:
        """Deliveries waiting in the normal lane (what back-pressure bounds)."""
        return len(self._slow)

    def put_nowait(self, delivery: _Delivery) -> None:
        """Queue a delivery in its lane and wake one consumer that may take it."""
        if delivery.urgent:
            self._fast.append(delivery)
            if not _wake_one(self._fast_getters):
                _wake_one(self._getters)
        else:
            self._slow.append(delivery)
            _wake_one(self._getters)

    async def get(self, *, fast_only: bool = False) -> _Delivery:
        """The next delivery, the fast lane first; waits while there is none to take."""
        getters = self._fast_getters if fast_only else self._getters
        while not (self._fast if fast_only else self._fast or self._slow):
            getter = asyncio.get_running_loop().create_future()
            getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                # Woken and cancelled at once: hand the wake-up on, or a delivery would sit.
                if getter.done() and not getter.cancelled() and not _wake_one(getters):
                    _wake_one(self._getters)
                raise
        return self._fast.popleft() if self._fast else self._slow.popleft()


def _wake_one(getters: collections.deque[asyncio.Future[None]]) -> bool:
    while getters:
        getter = getters.popleft()
        if not getter.done():
            getter.set_result(None)
            return True
    return False


@dataclass
class _Queue:
    spec: QueueSpec
    items: _Lanes
    space: asyncio.Event = field(default_factory=asyncio.Event)
    dead: list[DeadLetter] = field(default_factory=list)
    waiting_retry: int = 0
    in_flight: int = 0


class _MemoryConsumer:
    def __init__(self, bus: MemoryBus, queue: _Queue, handler: Handler, prefetch: int) -> None:
        self._bus = bus
        self._queue = queue
        self._handler = handler
        self._tasks = [asyncio.create_task(self._work()) for _ in range(prefetch)]
        self._tasks += [
            asyncio.create_task(self._work(fast_only=True)) for _ in range(FAST_HANDLERS)
        ]

    async def _work(self, *, fast_only: bool = False) -> None:
        q = self._queue
        while True:
            delivery = await q.items.get(fast_only=fast_only)
            if q.items.backlog() < self._bus._max_depth:
                q.space.set()
            q.in_flight += 1
            try:
                await self._bus._handle(q, delivery, self._handler)
            except asyncio.CancelledError:
                # A consumer that dies mid-message leaves it for the next one, as a broker does.
                delivery.redelivered = True
                q.items.put_nowait(delivery)
                raise
            finally:
                q.in_flight -= 1
                self._bus._changed()

    async def cancel(self) -> None:
        """Stop; messages in flight go back to the queue, marked redelivered."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class MemoryBus:
    """Topic routing, bounded retry with delay, dead letters and redelivery, in one process."""

    def __init__(self, node: str | None = None, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.node = node or uuid.uuid4().hex[:12]
        self._max_depth = max_depth
        self._queues: dict[str, _Queue] = {}
        self._listeners: dict[str, list[Handler]] = {}
        self._consumers: list[_MemoryConsumer] = []
        self._retry_handles: set[asyncio.TimerHandle] = set()
        self._idle = asyncio.Event()
        self._closed = False
        # Told of the bodies of dead letters dropped for good (the embedded journal's hook).
        self.purged: Callable[[Sequence[bytes]], None] | None = None

    @property
    def durable(self) -> bool:
        """Messages live in this process's memory and die with it: nothing to spool for."""
        return False

    @property
    def connected(self) -> bool:
        """Always: there is no broker to lose."""
        return True

    async def start(self) -> None:
        """Nothing to connect to; present for the contract."""

    async def declare(self, spec: QueueSpec) -> None:
        """Create the queue unless it exists."""
        if spec.name not in self._queues:
            self._queues[spec.name] = _Queue(spec=spec, items=_Lanes())

    async def publish(self, topic: str, env: Envelope) -> None:
        """Route `env` to every matching queue; waits while a queue is full (back-pressure).

        A message someone waits on (`reply_to` set) skips both the wait and the backlog:
        it is taken next, so a connector's passive reply is not queued behind bulk intake.
        """
        body = codec.encode(env)
        urgent = env.reply_to is not None
        routed = False
        for listener in self._listeners.get(topic, ()):
            routed = True
            await listener(codec.decode(body))
        for q in self._queues.values():
            if any(topic_matches(b, topic) for b in q.spec.bindings):
                routed = True
                while not urgent and q.items.backlog() >= self._max_depth:
                    q.space.clear()
                    await q.space.wait()
                self._idle.clear()
                q.items.put_nowait(_Delivery(body, urgent=urgent))
        if not routed:
            raise Unroutable(f"no queue is bound to {topic!r}")

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> _MemoryConsumer:
        """Start `prefetch` workers on `queue`."""
        consumer = _MemoryConsumer(self, self._queues[queue], handler, prefetch)
        self._consumers.append(consumer)
        return consumer

    async def listen(self, topic: str, handler: Handler) -> _Listener:
        """Call `handler` for each message published to exactly `topic`."""
        self._listeners.setdefault(topic, []).append(handler)
        return _Listener(self, topic, handler)

    async def _handle(self, q: _Queue, delivery: _Delivery, handler: Handler) -> None:
        delivery.attempts += 1
        try:
            env = codec.decode(delivery.body)
        except ValueError as exc:
            # Undecodable input never gets better by waiting: park it at once.
            self._dead_letter(q, delivery, f"undecodable: {exc}")
            return
        token = ATTEMPT.set(delivery.attempts)
        try:
            await handler(env)
        except asyncio.CancelledError:
            delivery.attempts -= 1
            raise
        except Exception as exc:
            if delivery.attempts < q.spec.retry.max_attempts:
                delay = q.spec.retry.delays[delivery.attempts - 1]
                log.warning("retrying %s on %s in %.1fs: %r", env.id, q.spec.name, delay, exc)
                self._schedule_retry(q, delivery, delay)
            else:
                log.error("dead-lettering %s from %s: %r", env.id, q.spec.name, exc)
                self._dead_letter(q, delivery, repr(exc))
        finally:
            ATTEMPT.reset(token)

    def _schedule_retry(self, q: _Queue, delivery: _Delivery, delay: float) -> None:
        q.waiting_retry += 1

        def requeue() -> None:
            self._retry_handles.discard(handle)
            q.waiting_retry -= 1
            delivery.redelivered = True
            q.items.put_nowait(delivery)

        handle = asyncio.get_running_loop().call_later(delay, requeue)
        self._retry_handles.add(handle)

    def _dead_letter(self, q: _Queue, delivery: _Delivery, error: str) -> None:
        q.dead.append(
            DeadLetter(
                id=uuid.uuid4().hex,
                queue=q.spec.name,
                body=delivery.body,
                error=error,
                attempts=delivery.attempts,
                dead_at=datetime.now(UTC),
            )
        )

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The queue's dead letters, oldest first."""
        return list(self._queues[queue].dead)

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Send dead letters back through their queue with a fresh retry budget."""
        q = self._queues[queue]
        chosen = [d for d in q.dead if ids is None or d.id in ids]
        q.dead = [d for d in q.dead if d not in chosen]
        for d in chosen:
            self._idle.clear()
            q.items.put_nowait(_Delivery(d.body, redelivered=True))
        return len(chosen)

    async def purge_dead(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Forget dead letters."""
        q = self._queues[queue]
        gone = [d for d in q.dead if ids is None or d.id in ids]
        q.dead = [d for d in q.dead if d not in gone]
        if gone and self.purged is not None:
            self.purged([d.body for d in gone])
        return len(gone)

    async def depth(self, queue: str) -> int:
        """Messages waiting, retries due later included."""
        q = self._queues[queue]
        return q.items.qsize() + q.waiting_retry

    def _busy(self) -> bool:
        return any(q.items.qsize() or q.in_flight or q.waiting_retry for q in self._queues.values())

    def _changed(self) -> None:
        if not self._busy():
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until every queue is empty, nothing is in flight and no retry is pending."""
        if not self._busy():
            return True
        self._idle.clear()
        try:
            async with asyncio.timeout(timeout):
                while self._busy():
                    await self._idle.wait()
                    self._idle.clear()
        except TimeoutError:
            return False
        return True

    async def finish(self, timeout: float) -> bool:
        """Drain (no other process would take what is queued), then stop every subscription.

        False on timeout: the consumers stop anyway, handlers in flight are cancelled and
        their messages go back to the queue.
        """
        drained = await self.drain(timeout)
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers.clear()
        self._listeners.clear()
        return drained

    async def close(self) -> None:
        """Stop every consumer and pending retry; what is left dies with the process."""
        self._closed = True
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers.clear()
        for handle in self._retry_handles:
            handle.cancel()
        self._retry_handles.clear()


class _Listener:
    def __init__(self, bus: MemoryBus, topic: str, handler: Handler) -> None:
        self._bus = bus
        self._topic = topic
        self._handler = handler

    async def cancel(self) -> None:
        """Stop listening."""
        handlers = self._bus._listeners.get(self._topic, [])
        if self._handler in handlers:
            handlers.remove(self._handler)
