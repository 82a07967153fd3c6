"""The embedded default's journal: on disk before the 202, gone only once stored."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from intake_hub.bus import MemoryBus, RetryPolicy, codec
from intake_hub.envelope import Envelope
from intake_hub.metrics import Metrics
from intake_hub.runtime.intake import Intake
from intake_hub.runtime.journal import Journal, keep_journal
from intake_hub.runtime.pipeline import Pipeline
from intake_hub.runtime.spool import Spool, SpoolFull, SpoolUnwritable
from intake_hub.stages import STAGE_NAMES
from intake_hub.testing import make_envelope


def _env(i: int) -> Envelope:
    return make_envelope(f"message {i}", customer=f"c{i}@example.com")


def _rows(path: Path) -> list[str]:
    """The envelope texts on disk, read through a connection of the test's own."""
    conn = sqlite3.connect(path)
    try:
        return [codec.decode(body).text for (body,) in conn.execute("SELECT body FROM spool")]
    finally:
        conn.close()


@dataclass
class Node:
    """An embedded node: memory bus, pipeline, intake and journal on one spool file."""

    path: Path
    stored: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False
    drop: bool = False
    slow: float = 0.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy((0.01,)))
    limit: int = 1000
    bus: MemoryBus = field(init=False)
    pipeline: Pipeline = field(init=False)
    intake: Intake = field(init=False)
    journal: Journal = field(init=False)

    def __post_init__(self) -> None:
        self.gate.set()
        self.bus = MemoryBus()
        functions = {name: self._pass for name in STAGE_NAMES} | {"persist": self._persist}
        if self.drop:
            functions["classify"] = self._drop
        self.pipeline = Pipeline(
            self.bus,
            functions,
            run=STAGE_NAMES,
            retry=self.retry,
            prefetch=1,
            metrics=Metrics(),
        )
        self.intake = Intake(self.bus)
        store = Spool(self.path, self.limit)
        self.journal = keep_journal(self.bus, store, self.intake, self.pipeline)

    async def _pass(self, env: Envelope) -> Envelope:
        return env

    async def _drop(self, env: Envelope) -> None:
        return None

    async def _persist(self, env: Envelope) -> Envelope:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("cannot store")
        if self.slow:
            await asyncio.sleep(self.slow)
        self.stored.append(env.text)
        return env

    async def start(self) -> None:
        """Open the journal, start consuming, feed what is left."""
        await self.journal.start(self.pipeline.start)

    async def stop(self) -> None:
        """Drain and close as a graceful shutdown does."""
        await self.bus.drain(10)
        await self.pipeline.stop()
        await self.intake.close()
        await self.bus.close()

    async def crash(self) -> None:
        """Stop without draining: what is in the memory bus dies, the file stays."""
        await self.pipeline.stop()
        await self.bus.close()
        await self.journal.store.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Callable[..., Node]]:
    """A node factory on one spool file; every node it made is stopped after the test."""
    made: list[Node] = []

    def make(**kw: object) -> Node:
        n = Node(tmp_path / "spool" / "node-0.sqlite3", **kw)  # type: ignore[arg-type]
        made.append(n)
        return n

    yield make
    for n in made:
        if n.journal.store._conn is not None:
            n.gate.set()
            await n.stop()


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_message_is_on_disk_when_emit_returns(node: Callable[..., Node]) -> None:
    """Once `emit` returns, another connection to the file reads the message."""
    n = node()
    n.gate.clear()
    await n.start()
    await n.intake.emit(_env(1))
    assert _rows(n.path) == ["message 1"]


async def test_row_goes_only_after_persistence_returned(node: Callable[..., Node]) -> None:
    """The row stays while persistence has not finished, and is deleted once it has."""
    n = node()
    n.gate.clear()
    await n.start()
    await n.intake.emit(_env(1))
    await asyncio.sleep(0.1)
    assert _rows(n.path) == ["message 1"] and n.stored == []
    n.gate.set()
    await _until(lambda: n.stored == ["message 1"])
    await _until(lambda: n.journal.store.depth == 0)
    assert _rows(n.path) == []


async def test_restart_stores_what_a_crash_left(node: Callable[..., Node]) -> None:
    """Messages accepted but not stored before a crash are stored after the next start."""
    first = node()
    first.gate.clear()
    await first.start()
    for i in range(20):
        await first.intake.emit(_env(i))
    await first.crash()
    assert len(_rows(first.path)) == 20

    second = node()
    await second.start()
    await _until(lambda: len(second.stored) == 20)
    assert sorted(second.stored) == sorted(f"message {i}" for i in range(20))
    await _until(lambda: second.journal.store.depth == 0)
    assert _rows(second.path) == []


async def test_waited_on_message_overtakes_the_left_backlog(node: Callable[..., Node]) -> None:
    """After a restart with a backlog, a message someone waits on is handled before it."""
    first = node()
    first.gate.clear()
    await first.start()
    await asyncio.gather(*(first.intake.emit(_env(i)) for i in range(300)))
    await first.crash()

    second = node(slow=0.002)
    await second.start()
    urgent = make_envelope("urgent", customer="w@example.com").model_copy(
        update={"reply_to": "someone"}
    )
    await second.intake.emit(urgent)
    await _until(lambda: "urgent" in second.stored)
    assert second.stored.index("urgent") < 50
    await _until(lambda: len(second.stored) == 301)


async def test_message_dropped_by_a_stage_leaves_the_journal(node: Callable[..., Node]) -> None:
    """A message a stage deliberately stops is done: its row is deleted too."""
    n = node(drop=True)
    await n.start()
    await n.intake.emit(_env(1))
    await _until(lambda: n.journal.store.depth == 0)
    assert _rows(n.path) == [] and n.stored == []


async def test_dead_letter_stays_on_disk_until_purged(node: Callable[..., Node]) -> None:
    """A message that keeps failing stays in the journal; purging it removes its row."""
    n = node(fail=True)
    await n.start()
    await n.intake.emit(_env(1))
    queue = n.pipeline.queues[0]
    async with asyncio.timeout(10):
        while not await n.bus.dead_letters(queue):
            await asyncio.sleep(0.01)
    assert _rows(n.path) == ["message 1"]
    assert await n.bus.purge_dead(queue) == 1
    await _until(lambda: n.journal.store.depth == 0)
    assert _rows(n.path) == []


async def test_full_journal_refuses_with_a_retry_hint(node: Callable[..., Node]) -> None:
    """At its limit the journal refuses with a retry hint and reports itself full."""
    n = node(limit=3)
    n.gate.clear()
    await n.start()
    for i in range(3):
        await n.intake.emit(_env(i))
    with pytest.raises(SpoolFull) as info:
        await n.intake.emit(_env(3))
    assert info.value.retry_after > 0
    assert len(_rows(n.path)) == 3
    assert n.journal.spool.full and n.journal.spool.depth == 3


async def test_disk_full_refuses_and_recovers(node: Callable[..., Node]) -> None:
    """A write the disk refuses raises a clear `SpoolUnwritable`; the next one may succeed."""
    n = node()
    n.gate.clear()
    await n.start()
    await n.intake.emit(_env(0))
    store = n.journal.store

    def cap(pages: int | None) -> None:
        assert store._conn is not None
        count = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages or count}")

    await store._run(cap, None)
    with pytest.raises(SpoolUnwritable, match="full"):
        await n.intake.emit(_env(1).model_copy(update={"text": "x" * 100_000}))
    await store._run(cap, 1_000_000)
    await n.intake.emit(_env(2))
    assert sorted(_rows(n.path)) == ["message 0", "message 2"]
    n.gate.set()
    await _until(lambda: len(n.stored) == 2)
    assert n.stored == ["message 0", "message 2"]


async def test_unwritable_data_directory_fails_the_start_clearly(tmp_path: Path) -> None:
    """A spool that cannot be created stops the start with an error naming the file."""
    (tmp_path / "home").write_text("not a directory")
    bus = MemoryBus()
    journal = Journal(bus, Spool(tmp_path / "home" / "spool" / "node-0.sqlite3"))
    with pytest.raises(SpoolUnwritable, match=r"node-0\.sqlite3"):
        await journal.start()
