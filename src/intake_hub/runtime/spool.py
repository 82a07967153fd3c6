"""The durable spool behind `Intake.emit`, and the gateway's use of it.

`Spool` is one SQLite file per node slot under `INTAKE_HUB_HOME/spool/`, written in group
commits (WAL, `synchronous=FULL`: every commit is fsynced before the appenders return).
`Spooler` sits behind a gateway's `Intake.emit`: it publishes straight to the bus while
the broker is up and the spool is empty, otherwise appends to the spool, and forwards the
spool in order once the broker is back, deleting each row only after its publish was
confirmed. The embedded default keeps every message in it (`runtime/journal.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from intake_hub.bus import BrokerUnreachable, Bus, BusError, Unroutable, codec
from intake_hub.envelope import Envelope
from intake_hub.storage.db import create_private
from intake_hub.ticketno import unclaimed

log = logging.getLogger(__name__)

T = TypeVar("T")

SPOOL_MAX = 100_000
RETRY_AFTER_S = 10
# A publish slower than this goes to the spool instead: a 202 never waits the bus's deadline.
FALLOVER_S = 1.0
FORWARD_BATCH = 256
FORWARD_TIMEOUT_S = 10.0
FORWARD_IDLE_S = 0.2
FORWARD_BACKOFF_S = 0.5
CLOSE_FLUSH_S = 20.0
LINK_RETRY_S = 1.0
# A broker address that drops packets would hold a connect for minutes: give up and retry.
LINK_TIMEOUT_S = 15.0
# Bound parameters per statement stay far below SQLite's limit (32,766).
_ROWS_PER_STATEMENT = 500

Link = Callable[[], Awaitable[None]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    body BLOB NOT NULL
)
"""


class SpoolFull(BusError):
    """The broker is unreachable and the spool holds its maximum: refuse, ask to retry later."""

    def __init__(self, depth: int, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(f"spool full ({depth} messages) while the broker is unreachable")
        self.retry_after = retry_after


class SpoolUnwritable(SpoolFull):
    """The spool's disk refused a write (full, read-only, I/O error): refuse, ask to retry."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        BusError.__init__(self, f"spool {path} cannot be written: {exc}")
        self.retry_after = RETRY_AFTER_S


class SpoolState(Protocol):
    """What `/readyz` reads of a spool."""

    @property
    def depth(self) -> int:
        """Messages waiting to be handed to the bus."""

    @property
    def full(self) -> bool:
        """Whether the next message would be refused."""


class Keeper(Protocol):
    """What stands behind `Intake.emit` to keep accepted messages on disk."""

    @property
    def spool(self) -> SpoolState:
        """Its spool, as `/readyz` shows it."""

    @property
    def broker_up(self) -> bool:
        """Whether messages reach the bus right now."""

    async def start(self, link: Link | None = None, unlink: Link | None = None) -> None:
        """Open the spool, run `link` (connect, declare, consume) and begin feeding the bus."""

    async def publish(self, topic: str, env: Envelope) -> None:
        """Return once `env` is safely kept (raises `SpoolFull` or `Unroutable`)."""

    async def close(self) -> None:
        """Stop; what is still on disk waits for the next start."""


class Spool:
    """Messages in arrival order in one SQLite file; `append` returns once fsynced."""

    def __init__(self, path: Path, limit: int = SPOOL_MAX) -> None:
        self.path = path
        self.limit = limit
        self.depth = 0
        self._conn: sqlite3.Connection | None = None
        # One thread owns the connection, so calls never overlap and stay in order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._pending: list[tuple[str, bytes, asyncio.Future[int]]] = []
        # Deletes ride along with the next group commit: a lost one only means a replay.
        self._removals: list[int] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> int:
        create_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(_SCHEMA)
        self._conn = conn
        self._adopt_orphans(conn)
        return int(conn.execute("SELECT count(*) FROM spool").fetchone()[0])

    def _adopt_orphans(self, conn: sqlite3.Connection) -> None:
        """Take in the rows of spool files whose node slot no process holds any more.

        After a crash with fewer processes (or another node slot) than before, nobody
        would claim those slots again. Copied, fsynced, then the file removed: a crash in
        between leaves the rows in both, and persistence dedupes the second copy.
        """
        home = self.path.parent.parent
        for other in sorted(self.path.parent.glob("node-*.sqlite3")):
            slot = other.stem.removeprefix("node-")
            if other == self.path or not slot.isdigit():
                continue
            with unclaimed(home, int(slot)) as free:
                if not free:
                    continue
                try:
                    moved = _copy_rows(conn, other)
                except sqlite3.Error as exc:
                    # Kept for an operator to look at; this process's own spool still works.
                    log.error("spool %s: cannot take in %s: %s", self.path, other, exc)
                    continue
                if moved:
                    log.warning("spool %s: took in %d messages of %s", self.path, moved, other)
                for suffix in ("-wal", "-shm", ""):
                    Path(f"{other}{suffix}").unlink(missing_ok=True)

    async def open(self) -> None:
        """Open (or create) the file and count what an earlier process left in it."""
        try:
            self.depth = await self._run(self._open)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolUnwritable(self.path, exc) from exc
        if self.depth:
            log.warning(
                "spool %s holds %d messages from before; forwarding them", self.path, self.depth
            )

    @property
    def pending(self) -> int:
        """Appends waiting for the next commit."""
        return len(self._pending)

    @property
    def full(self) -> bool:
        """Whether one more append would go past the limit."""
        return self.depth + len(self._pending) >= self.limit

    async def append(self, topic: str, body: bytes) -> int:
        """Add one message; returns its seq once committed and fsynced.

        Raises `SpoolFull` at the limit, `SpoolUnwritable` when the disk refuses the write.
        """
        if self.full:
            raise SpoolFull(self.depth + len(self._pending))
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((topic, body, fut))
        self._kick()
        return await fut

    def discard(self, seqs: Sequence[int]) -> None:
        """Delete rows with the next group commit, without waiting for it."""
        if self._closed:
            return  # too late: the rows are replayed at the next start, and deduped
        self._removals.extend(seqs)
        self._kick()

    def _kick(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    def _commit(
        self, rows: Sequence[tuple[str, bytes]], removals: Sequence[int]
    ) -> tuple[int, int]:
        """Insert `rows`, delete `removals`, one fsync; the last seq inserted and rows deleted."""
        conn = self._conn
        if conn is None:
            raise sqlite3.ProgrammingError("the spool is closed")
        # Few statements, each for many rows: this thread gives the GIL up around every
        # SQLite call and waits to get it back from a busy event loop, once per call.
        last = removed = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            for batch in _chunks(rows, _ROWS_PER_STATEMENT):
                values = ",".join(["(?, ?)"] * len(batch))
                flat = [x for row in batch for x in row]
                last = (
                    conn.execute(f"INSERT INTO spool (topic, body) VALUES {values}", flat).lastrowid
                    or 0
                )
            for seqs in _chunks(removals, 2 * _ROWS_PER_STATEMENT):
                marks = ",".join(["?"] * len(seqs))
                removed += conn.execute(f"DELETE FROM spool WHERE seq IN ({marks})", seqs).rowcount
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (SQLITE_FULL does), or COMMIT itself failed.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return last, removed

    async def _flush(self) -> None:
        # Group commit: everything appended while one commit runs goes into the next one.
        failed: list[int] = []
        while self._pending or self._removals:
            batch, self._pending = self._pending, []
            removals, self._removals = self._removals, []
            try:
                last, removed = await self._run(
                    self._commit, [(topic, body) for topic, body, _ in batch], removals
                )
            except Exception as exc:
                log.error("spool %s: write failed: %s", self.path, exc)
                error = SpoolUnwritable(self.path, exc)
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
                failed += removals
                continue
            self.depth += len(batch) - removed
            # One writer in one transaction: AUTOINCREMENT handed out consecutive seqs.
            first = last - len(batch) + 1
            for i, (_, _, fut) in enumerate(batch):
                if not fut.done():
                    fut.set_result(first + i)
        # Deletes that failed are tried again with the next commit, not in a loop now.
        self._removals[:0] = failed

    def _head(self, n: int, after: int) -> list[tuple[int, str, bytes]]:
        assert self._conn is not None
        cur = self._conn.execute(
            "SELECT seq, topic, body FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after, n)
        )
        return [(int(seq), str(topic), bytes(body)) for seq, topic, body in cur]

    async def head(self, n: int, after: int = 0) -> list[tuple[int, str, bytes]]:
        """The oldest `n` messages after seq `after` as (seq, topic, body), left in place."""
        return await self._run(self._head, n, after)

    def _last(self) -> int:
        assert self._conn is not None
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM spool").fetchone()[0])

    async def last(self) -> int:
        """The newest seq in the file (0 when empty)."""
        return await self._run(self._last)

    def _delete(self, seqs: Sequence[int]) -> int:
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")
        cur = self._conn.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])
        self._conn.execute("COMMIT")
        return cur.rowcount

    async def remove(self, seqs: Sequence[int]) -> None:
        """Delete forwarded messages by seq."""
        if seqs:
            # Not `self.depth -= await ...`: that reads depth before appends made during the await.
            removed = await self._run(self._delete, seqs)
            self.depth -= removed

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Wait for appends and deletes in progress, then close the file."""
        if self._closed:
            return
        # From here `discard` queues nothing, so the flusher below is the last one.
        self._closed = True
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        await self._run(self._close)
        self._executor.shutdown(wait=True)


class Spooler:
    """Publishes through the bus, or into the spool while the broker is unreachable.

    A message goes to the spool when the bus reports no connection, when a publish takes
    longer than `fallover` seconds or fails, and whenever the spool is not empty, so that
    nothing accepted later overtakes what is already spooled.
    """

    def __init__(
        self,
        bus: Bus,
        spool: Spool,
        connected: Callable[[], bool],
        *,
        fallover: float = FALLOVER_S,
    ) -> None:
        self._bus = bus
        self.spool = spool
        self._connected = connected
        self._fallover = fallover
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._linking: asyncio.Task[None] | None = None
        self._linked = False
        self._failing = False

    @property
    def broker_up(self) -> bool:
        """Whether the bus is linked and connected and the last publish attempt did not fail."""
        return self._reachable() and not self._failing

    def _reachable(self) -> bool:
        return self._linked and self._connected()

    async def start(self, link: Link | None = None, unlink: Link | None = None) -> None:
        """Open the spool, run `link` (connect, declare), and forward whatever the spool holds.

        If `link` raises `BrokerUnreachable` or takes longer than `LINK_TIMEOUT_S`, the
        spooler starts anyway: everything goes to the spool while `link` is retried in the
        background (after `unlink` undid any half of it), and forwarding begins once it
        succeeded.
        """
        await self.spool.open()
        if link is None:
            self._linked = True
        else:
            try:
                async with asyncio.timeout(LINK_TIMEOUT_S):
                    await link()
                self._linked = True
            except (BrokerUnreachable, TimeoutError) as exc:
                log.warning("starting without the broker (%s): spooling until it answers", exc)
                self._linking = asyncio.create_task(self._link_loop(link, unlink))
        self._task = asyncio.create_task(self._forward_loop())

    async def _link_loop(self, link: Link, unlink: Link | None) -> None:
        while True:
            if unlink is not None:
                with contextlib.suppress(Exception):
                    await unlink()
            await asyncio.sleep(LINK_RETRY_S)
            try:
                async with asyncio.timeout(LINK_TIMEOUT_S):
                    await link()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("broker still unreachable: %r", exc)
                continue
            log.warning("broker reached; forwarding %d spooled messages", self.spool.depth)
            self._linked = True
            self._wake.set()
            return

    async def publish(self, topic: str, env: Envelope) -> None:
        """Publish `env`, or spool it durably; raises `SpoolFull` or `Unroutable`."""
        if self.spool.depth == 0 and self.spool.pending == 0 and self.broker_up:
            try:
                async with asyncio.timeout(self._fallover):
                    await self._bus.publish(topic, env)
                return
            except Unroutable:
                raise
            except Exception as exc:
                # A publish that did get through is forwarded again: persistence dedupes by id.
                self._failing = True
                log.warning("broker unavailable (%r): spooling from now on", exc)
        await self.spool.append(topic, codec.encode(env))
        self._wake.set()

    async def _send(self, topic: str, body: bytes) -> None:
        async with asyncio.timeout(FORWARD_TIMEOUT_S):
            await self._bus.publish(topic, codec.decode(body))

    async def forward_once(self) -> int:
        """Forward the oldest batch in order; returns how many were confirmed and removed."""
        rows = await self.spool.head(FORWARD_BATCH)
        if not rows:
            return 0
        # Started in spool order on one channel, so the broker receives them in that order.
        results = await asyncio.gather(
            *(self._send(topic, body) for _, topic, body in rows), return_exceptions=True
        )
        done = [seq for (seq, _, _), result in zip(rows, results, strict=True) if result is None]
        await self.spool.remove(done)
        failed = [r for r in results if r is not None]
        if failed:
            self._failing = True
            log.warning("forwarded %d of %d spooled messages: %r", len(done), len(rows), failed[0])
        return len(done)

    async def _forward_loop(self) -> None:
        while True:
            try:
                if self.spool.depth == 0 or not self._reachable():
                    if self.spool.depth == 0 and self._reachable():
                        self._failing = False
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(FORWARD_IDLE_S):
                            await self._wake.wait()
                    continue
                sent = await self.forward_once()
                if sent == 0:
                    await asyncio.sleep(FORWARD_BACKOFF_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("spool forwarding failed; retrying")
                await asyncio.sleep(FORWARD_BACKOFF_S)

    async def close(self, flush_timeout: float = CLOSE_FLUSH_S) -> None:
        """Forward what the spool holds if the broker is up (bounded), then stop; the rest stays."""
        if self._linking is not None:
            self._linking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._linking
            self._linking = None
        if self._task is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + flush_timeout
            while self.spool.depth and self._reachable() and loop.time() < deadline:
                await asyncio.sleep(FORWARD_IDLE_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.spool.close()
        if self.spool.depth:
            log.warning("spool keeps %d messages for the next start", self.spool.depth)


def _copy_rows(conn: sqlite3.Connection, other: Path) -> int:
    """Append every row of the spool file `other` to `conn`'s, in order; how many."""
    conn.execute("ATTACH DATABASE ? AS orphan", (str(other),))
    try:
        if not conn.execute("SELECT 1 FROM orphan.sqlite_master WHERE name = 'spool'").fetchone():
            return 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            moved = conn.execute(
                "INSERT INTO spool (topic, body) SELECT topic, body FROM orphan.spool ORDER BY seq"
            ).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return moved
    finally:
        conn.execute("DETACH DATABASE orphan")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def spool_path(home: Path, node: int) -> Path:
    """The spool file of one node slot (claimed by `TicketNumbers.for_home`) under HOME."""
    return home / "spool" / f"node-{node}.sqlite3"


__all__ = [
    "SPOOL_MAX",
    "Keeper",
    "Spool",
    "SpoolFull",
    "SpoolState",
    "SpoolUnwritable",
    "Spooler",
    "spool_path",
]
