"""The embedded default's durable intake: a 202 means the message is on disk.

`Journal` stands behind `Intake.emit` when the bus is the in-process one. Every message is
appended to the node's spool file (group commit, fsynced) before it enters the memory bus,
and its row is deleted only when the pipeline has finished with it (`settle`, called by
the pipeline once persistence committed). On start, what a crash left in the file is fed
through the pipeline again; persistence dedupes by envelope id, so nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from uuid import UUID

from intake_hub.bus import Bus, MemoryBus, codec
from intake_hub.envelope import Envelope
from intake_hub.runtime.intake import Intake
from intake_hub.runtime.pipeline import Pipeline
from intake_hub.runtime.spool import Link, Spool

log = logging.getLogger(__name__)

FEED_BATCH = 256
# Start waits this long for the rows left by a crash to be queued ahead of new messages.
FEED_FIRST_S = 5.0


class _Waiting:
    """The journal as `/readyz` shows it: what waits beyond the normal flow.

    Every message in flight has a row, so the whole count would read as "degraded" under
    any load: shown are the rows a crash left that are not queued again yet, or all of
    them once the journal is full.
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    @property
    def depth(self) -> int:
        """Rows an earlier process left not yet queued again; every row when full."""
        return self._journal.store.depth if self.full else self._journal.left

    @property
    def full(self) -> bool:
        """Whether the next message would be refused."""
        return self._journal.store.full


class Journal:
    """Appends before publishing to the in-process bus; deletes once the pipeline is done."""

    def __init__(self, bus: Bus, store: Spool) -> None:
        self._bus = bus
        self.store = store
        self.spool = _Waiting(self)
        self.left = 0
        # Several rows may carry one envelope id (a retried post that derives its id).
        self._rows: dict[UUID, list[int]] = {}
        self._feeder: asyncio.Task[None] | None = None

    @property
    def broker_up(self) -> bool:
        """Always: the in-process bus cannot be away."""
        return True

    async def start(self, link: Link | None = None, unlink: Link | None = None) -> None:
        """Open the file, run `link` (declare, consume), then feed what a crash left."""
        await self.store.open()
        if link is not None:
            await link()
        if self.store.depth:
            top = await self.store.last()
            self.left = self.store.depth
            self._feeder = asyncio.create_task(self._feed(top))
            # Whatever fits in the bus now is queued before the first new message.
            await asyncio.wait({self._feeder}, timeout=FEED_FIRST_S)

    async def publish(self, topic: str, env: Envelope) -> None:
        """Return once `env` is fsynced and queued (raises `SpoolFull` or `Unroutable`)."""
        seq = await self.store.append(topic, codec.encode(env))
        self._rows.setdefault(env.id, []).append(seq)
        try:
            await self._bus.publish(topic, env)
        except BaseException:
            # Not accepted after all (the caller gets the error, not a 202): forget the row.
            self._forget(env.id, seq)
            raise

    def settle(self, env: Envelope) -> None:
        """The pipeline is done with `env` (stored, or deliberately dropped): delete its rows."""
        seqs = self._rows.pop(env.id, None)
        if seqs:
            self.store.discard(seqs)

    def forget_bodies(self, bodies: Iterable[bytes]) -> None:
        """Dead letters purged for good: their rows go too, or a restart would bring them back."""
        for body in bodies:
            with contextlib.suppress(ValueError):
                self.settle(codec.decode(body))

    def _forget(self, key: UUID, seq: int) -> None:
        seqs = self._rows.get(key)
        if seqs is not None and seq in seqs:
            seqs.remove(seq)
            if not seqs:
                del self._rows[key]
        self.store.discard([seq])

    async def _feed(self, top: int) -> None:
        log.warning("journal %s holds %d messages from before", self.store.path, self.left)
        after = 0
        while rows := [r for r in await self.store.head(FEED_BATCH, after) if r[0] <= top]:
            for seq, topic, body in rows:
                after = seq
                try:
                    env = codec.decode(body)
                except ValueError as exc:
                    log.error("journal row %d cannot be read, left in place: %s", seq, exc)
                    self.left -= 1
                    continue
                # Whoever waited for its auto-reply died with the crash: no fast lane for it.
                env = env.model_copy(update={"reply_to": None})
                self._rows.setdefault(env.id, []).append(seq)
                try:
                    await self._bus.publish(topic, env)
                except Exception:
                    log.exception("journal row %d not queued; left for the next start", seq)
                    self._rows[env.id].remove(seq)
                self.left -= 1
        log.info("journal: every message from before is queued again")

    async def close(self) -> None:
        """Stop feeding, write the last deletes and close; unfinished rows wait for next start."""
        if self._feeder is not None:
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder
            self._feeder = None
        await self.store.close()
        if self.store.depth:
            log.warning("journal keeps %d messages for the next start", self.store.depth)


def keep_journal(bus: MemoryBus, store: Spool, intake: Intake, pipeline: Pipeline) -> Journal:
    """Put a journal behind `intake.emit` and let the pipeline and purges settle its rows."""
    journal = Journal(bus, store)
    intake.spooler = journal
    pipeline.settled = journal.settle
    bus.purged = journal.forget_bodies
    return journal
