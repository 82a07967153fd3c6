"""The bus contract every implementation keeps, and the types it speaks in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from intake_hub.envelope import Envelope

Handler = Callable[[Envelope], Awaitable[None]]

# Which delivery of its message a consumer's handler runs (1: the first), set by the bus, so
# a handler can tell a failure that will be retried from one that dead-letters.
ATTEMPT: ContextVar[int] = ContextVar("intake_hub_attempt", default=1)


class BusError(RuntimeError):
    """The bus could not do what was asked; the caller must not assume the message is safe."""


class Unroutable(BusError):
    """A publish matched no queue, so nobody would ever have seen it."""


class BrokerUnreachable(BusError):
    """The broker did not answer the connection (down, restarting, or out of reach)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failed message is tried again before it is dead-lettered."""

    delays: tuple[float, ...] = (1.0, 5.0, 30.0)

    @property
    def max_attempts(self) -> int:
        """Deliveries in all, the first one included."""
        return len(self.delays) + 1


@dataclass(frozen=True)
class QueueSpec:
    """A durable work queue, the topics bound to it and its retry policy."""

    name: str
    bindings: tuple[str, ...]
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class DeadLetter:
    """A message that failed every attempt, kept with the reason until replayed or purged."""

    id: str
    queue: str
    body: bytes
    error: str
    attempts: int
    dead_at: datetime


class Consumer(Protocol):
    """A running subscription; cancelling it hands unfinished messages back to the queue."""

    async def cancel(self) -> None:
        """Stop taking messages; those in flight are redelivered to the next consumer."""


class Bus(Protocol):
    """Publish envelopes by topic; consume them from queues with ack, retry and dead-letter.

    A handler that returns acks its message. One that raises has it retried after the
    policy's delays, then dead-lettered. One that never finishes (its consumer cancelled,
    its process killed) has it redelivered. `publish` returns only once the message is
    safely with the bus.
    """

    node: str

    @property
    def durable(self) -> bool:
        """Whether messages outlive this process, so a publishing edge may spool for the bus.

        A broker holds them and other processes share its queues; what an edge accepts while
        the broker is away can wait in a spool and be published later.
        """

    @property
    def connected(self) -> bool:
        """Whether a publish can reach the bus right now (False while a broker is away)."""

    async def start(self) -> None:
        """Connect; nothing else may be called before."""

    async def declare(self, spec: QueueSpec) -> None:
        """Create the queue (and its retry and dead-letter parts) if it does not exist."""

    async def publish(self, topic: str, env: Envelope) -> None:
        """Send `env` to every queue bound to `topic`; raises `Unroutable` if there is none."""

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> Consumer:
        """Run `handler` on the queue's messages, at most `prefetch` at a time."""

    async def listen(self, topic: str, handler: Handler) -> Consumer:
        """Run `handler` on messages of `topic` meant for this process only (no retry, no DLQ)."""

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The dead letters of `queue`, oldest first."""

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Put dead letters (all, or those with `ids`) back on their queue; returns how many."""

    async def purge_dead(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Drop dead letters for good; returns how many."""

    async def depth(self, queue: str) -> int:
        """Messages waiting in `queue`, not counting those in flight."""

    async def drain(self, timeout: float) -> bool:
        """Wait until every queue is empty and nothing is in flight; False on timeout."""

    async def finish(self, timeout: float) -> bool:
        """Stop taking messages once those this process holds are handled; False on timeout.

        Handlers in flight finish and their messages are settled; one still running at the
        timeout is abandoned and its message redelivered. A durable bus leaves what is still
        queued to the other processes; the in-process bus, having none, drains first.
        """

    async def close(self) -> None:
        """Disconnect; in-flight messages are redelivered later, nothing is acked half-done."""
