"""The parking queues: parking a message with its reason, listing, replaying and purging."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage

from intake_hub.bus.base import DeadLetter
from intake_hub.bus.rabbit.connection import TRANSIENT, Link
from intake_hub.bus.rabbit.messages import (
    ATTEMPTS,
    DEAD_AT,
    DEAD_ID,
    ERROR,
    int_header,
    message,
    str_header,
    truncate,
)
from intake_hub.bus.rabbit.publish import Publisher
from intake_hub.bus.rabbit.topology import Topology

DEAD_LIST_MAX = 10_000

Parked = list[tuple[DeadLetter, AbstractIncomingMessage]]


async def park(
    publisher: Publisher, dead_queue: str, msg: AbstractIncomingMessage, error: str, attempts: int
) -> None:
    """Copy `msg` to the broker queue `dead_queue` with its error, attempts and a dead-letter id."""
    headers = {
        ATTEMPTS: attempts,
        ERROR: truncate(error),
        DEAD_ID: uuid.uuid4().hex,
        DEAD_AT: time.time_ns() // 1000,
    }
    await publisher.to_queue(dead_queue, message(msg.body, msg.message_id, headers))


def dead_letter(queue: str, msg: AbstractIncomingMessage) -> DeadLetter:
    """What a parked message says about itself, parked by the bus or by the broker."""
    headers = dict(msg.headers)
    dead_at_us = int_header(headers, DEAD_AT)
    # Parked by the broker itself (delivery limit): none of our headers, x-death instead.
    dead_id = str_header(headers, DEAD_ID) or (
        f"{msg.message_id}:{str_header(headers, 'x-first-death-reason')}"
    )
    error = str_header(headers, ERROR) or (
        f"dead-lettered by the broker: {str_header(headers, 'x-first-death-reason')}"
    )
    dead_at = (
        datetime.fromtimestamp(dead_at_us / 1_000_000, UTC)
        if dead_at_us
        else (msg.timestamp or datetime.now(UTC))
    )
    if dead_at.tzinfo is None:
        dead_at = dead_at.replace(tzinfo=UTC)
    return DeadLetter(
        id=dead_id,
        queue=queue,
        body=msg.body,
        error=error,
        attempts=int_header(headers, ATTEMPTS),
        dead_at=dead_at,
    )


class DeadLetters:
    """The operator's view of the parking queues: list, replay and purge."""

    def __init__(self, link: Link, topology: Topology, publisher: Publisher) -> None:
        self._link = link
        self._topology = topology
        self._publisher = publisher
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _parked(self, queue: str) -> AsyncIterator[Parked]:
        """Take every parked message unacked; whatever the caller did not settle goes back."""
        names = self._topology.names(queue)
        conn = self._link.connection
        async with self._lock:
            channel = await conn.channel()
            try:
                amqp_queue = await channel.get_queue(names.dead, ensure=False)
                taken: Parked = []
                while len(taken) < DEAD_LIST_MAX:
                    msg = await amqp_queue.get(no_ack=False, fail=False)
                    if msg is None:
                        break
                    taken.append((dead_letter(queue, msg), msg))
                # Stable: ties keep queue order.
                taken.sort(key=lambda pair: pair[0].dead_at)
                try:
                    yield taken
                finally:
                    for _, msg in taken:
                        if not msg.processed:
                            await msg.nack(requeue=True)
            finally:
                with contextlib.suppress(*TRANSIENT):
                    await channel.close()

    async def list(self, queue: str) -> list[DeadLetter]:
        """The parked messages of `queue`, oldest first, left in place.

        Listing takes each message unacked and returns it, so two operators listing the
        same queue at the same moment may each see part of it.
        """
        async with self._parked(queue) as taken:
            return [dead for dead, _ in taken]

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Re-publish parked messages to their work queue with a fresh retry budget."""
        work = self._topology.names(queue).work
        count = 0
        async with self._parked(queue) as taken:
            for dead, msg in taken:
                if ids is not None and dead.id not in ids:
                    continue
                await self._publisher.to_queue(work, message(msg.body, msg.message_id, {}))
                await msg.ack()
                count += 1
        return count

    async def purge(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Drop parked messages (all, or those with `ids`) for good."""
        count = 0
        async with self._parked(queue) as taken:
            for dead, msg in taken:
                if ids is None or dead.id in ids:
                    await msg.ack()
                    count += 1
        return count
