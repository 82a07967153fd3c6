"""The gateway's durable spool and the spooling publisher, on a stand-in bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from intake_hub.bus import BrokerUnreachable, BusError, Unroutable
from intake_hub.envelope import Envelope
from intake_hub.runtime import spool as spool_module
from intake_hub.runtime.spool import Spool, Spooler, SpoolFull
from intake_hub.testing import make_envelope
from intake_hub.ticketno import TicketNumbers


def _env(i: int) -> Envelope:
    return make_envelope(f"message {i}", customer=f"c{i}@example.com")


class FakeBus:
    """Records publishes; `up` says whether the broker is reachable, `hang` stalls publishes."""

    def __init__(self) -> None:
        self.up = True
        self.hang = False
        self.unroutable = False
        self.published: list[tuple[str, str]] = []

    async def publish(self, topic: str, env: Envelope) -> None:
        """Publish unless down, hanging or unroutable."""
        if self.unroutable:
            raise Unroutable(topic)
        if self.hang:
            await asyncio.sleep(3600)
        if not self.up:
            raise BusError("down")
        self.published.append((topic, env.text))


def _spooler(bus: FakeBus, path: Path, limit: int = 1000) -> Spooler:
    return Spooler(bus, Spool(path, limit), lambda: bus.up, fallover=0.2)


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_spool_keeps_order_and_survives_reopen(tmp_path: Path) -> None:
    """Appended rows come back in order after a reopen, and removing them lowers the depth."""

    async def main() -> None:
        spool = Spool(tmp_path / "s.sqlite3")
        await spool.open()
        await asyncio.gather(*(spool.append("t", str(i).encode()) for i in range(50)))
        assert spool.depth == 50
        await spool.close()

        again = Spool(tmp_path / "s.sqlite3")
        await again.open()
        assert again.depth == 50
        rows = await again.head(10)
        assert [body for _, _, body in rows] == [str(i).encode() for i in range(10)]
        await again.remove([seq for seq, _, _ in rows])
        assert again.depth == 40
        assert (await again.head(1))[0][2] == b"10"
        await again.close()

    asyncio.run(main())


def test_full_spool_refuses(tmp_path: Path) -> None:
    """Past its limit the spool raises `SpoolFull` with a retry hint."""

    async def main() -> None:
        spool = Spool(tmp_path / "s.sqlite3", limit=3)
        await spool.open()
        for i in range(3):
            await spool.append("t", b"%d" % i)
        with pytest.raises(SpoolFull) as info:
            await spool.append("t", b"x")
        assert info.value.retry_after > 0
        await spool.close()

    asyncio.run(main())


def test_spools_while_down_and_forwards_in_order(tmp_path: Path) -> None:
    """Down: emits are spooled at once; up again: forwarded in order, later ones after them."""

    async def main() -> None:
        bus = FakeBus()
        spooler = _spooler(bus, tmp_path / "s.sqlite3")
        await spooler.start()
        await spooler.publish("t", _env(0))
        bus.up = False
        for i in range(1, 6):
            await spooler.publish("t", _env(i))
        assert spooler.spool.depth == 5
        assert not spooler.broker_up
        bus.up = True
        await _until(lambda: spooler.spool.depth == 0)
        await spooler.publish("t", _env(6))
        assert [text for _, text in bus.published] == [f"message {i}" for i in range(7)]
        await spooler.close()

    asyncio.run(main())


def test_slow_publish_falls_over_to_the_spool(tmp_path: Path) -> None:
    """A publish that hangs is spooled after the fallover time, not the bus's deadline."""

    async def main() -> None:
        bus = FakeBus()
        spooler = _spooler(bus, tmp_path / "s.sqlite3")
        await spooler.start()
        bus.hang = True
        started = asyncio.get_running_loop().time()
        await spooler.publish("t", _env(1))
        assert asyncio.get_running_loop().time() - started < 1.0
        assert spooler.spool.depth == 1
        bus.hang = False
        await _until(lambda: spooler.spool.depth == 0)
        assert bus.published == [("t", "message 1")]
        await spooler.close()

    asyncio.run(main())


def test_unroutable_is_not_spooled(tmp_path: Path) -> None:
    """A topic bound to no queue is a configuration error, not an outage: it raises."""

    async def main() -> None:
        bus = FakeBus()
        bus.unroutable = True
        spooler = _spooler(bus, tmp_path / "s.sqlite3")
        await spooler.start()
        with pytest.raises(Unroutable):
            await spooler.publish("t", _env(1))
        assert spooler.spool.depth == 0
        await spooler.close()

    asyncio.run(main())


def test_starts_unlinked_and_links_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link failing at start: spool meanwhile, retry the link (undoing each try), then forward."""
    monkeypatch.setattr(spool_module, "LINK_RETRY_S", 0.05)

    async def main() -> None:
        bus = FakeBus()
        calls: list[str] = []

        async def link() -> None:
            calls.append("link")
            if calls.count("link") < 3:
                raise BrokerUnreachable("refused")

        async def unlink() -> None:
            calls.append("unlink")

        spooler = _spooler(bus, tmp_path / "s.sqlite3")
        await spooler.start(link, unlink)
        assert not spooler.broker_up
        for i in range(3):
            await spooler.publish("t", _env(i))
        await _until(lambda: spooler.spool.depth == 0)
        assert calls == ["link", "unlink", "link", "unlink", "link"]
        assert spooler.broker_up
        assert [text for _, text in bus.published] == [f"message {i}" for i in range(3)]
        await spooler.close()

    asyncio.run(main())


def test_a_link_failing_otherwise_stops_the_start(tmp_path: Path) -> None:
    """Only an unreachable broker is waited out; refused credentials fail the start at once."""

    async def main() -> None:
        async def link() -> None:
            raise PermissionError("ACCESS_REFUSED")

        spooler = _spooler(FakeBus(), tmp_path / "s.sqlite3")
        with pytest.raises(PermissionError):
            await spooler.start(link)
        await spooler.spool.close()

    asyncio.run(main())


def test_a_link_that_hangs_is_given_up_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connect that never answers (packets dropped) does not block the start; it is retried."""
    monkeypatch.setattr(spool_module, "LINK_TIMEOUT_S", 0.1)
    monkeypatch.setattr(spool_module, "LINK_RETRY_S", 0.05)

    async def main() -> None:
        tries: list[int] = []

        async def link() -> None:
            tries.append(1)
            if len(tries) == 1:
                await asyncio.sleep(3600)

        spooler = _spooler(FakeBus(), tmp_path / "s.sqlite3")
        async with asyncio.timeout(2):
            await spooler.start(link)
        assert not spooler.broker_up
        await _until(lambda: spooler.broker_up)
        assert len(tries) == 2
        await spooler.close()

    asyncio.run(main())


async def _left_behind(home: Path, node: int, n: int) -> None:
    """A spool of node `node` holding `n` rows, closed as a crash leaves it."""
    left = Spool(spool_module.spool_path(home, node))
    await left.open()
    for i in range(n):
        await left.append("ticket.received.web", f"row {node}-{i}".encode())
    await left.close()


async def test_spool_of_a_slot_nobody_claims_is_taken_in(tmp_path: Path) -> None:
    """After a crash with more processes than now, their rows join a running spool in order."""
    home = tmp_path / "home"
    await _left_behind(home, 1, 3)
    await _left_behind(home, 2, 2)
    mine = Spool(spool_module.spool_path(home, 0))
    await mine.open()
    try:
        assert mine.depth == 5
        bodies = [body for _, _, body in await mine.head(10)]
        assert bodies == [b"row 1-0", b"row 1-1", b"row 1-2", b"row 2-0", b"row 2-1"]
        assert sorted(p.name for p in (home / "spool").glob("*.sqlite3")) == ["node-0.sqlite3"]
    finally:
        await mine.close()


async def test_spool_of_a_running_process_is_left_alone(tmp_path: Path) -> None:
    """A slot some process holds keeps its spool: only that process forwards it."""
    home = tmp_path / "home"
    await _left_behind(home, 1, 3)
    holder = TicketNumbers.for_home(home, 1)
    mine = Spool(spool_module.spool_path(home, 0))
    await mine.open()
    try:
        assert mine.depth == 0
        assert (home / "spool" / "node-1.sqlite3").exists()
    finally:
        await mine.close()
        holder.close()
