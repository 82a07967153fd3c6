"""`intake-hub serve` SIGKILLed under load: every message answered 202 is stored once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.served.conftest import Served, start_service

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

CLIENTS = 64
# A pipeline slower than intake (one message per transaction), so a backlog is in flight.
SLOW = {"INTAKE_HUB_BATCH_SIZE": "1", "INTAKE_HUB_CONCURRENCY": "4"}
QUIET = {"INTAKE_HUB_RATE_LIMITS": "off"}
ONE = {"INTAKE_HUB_PROCESSES": "1"}


def _inbound(home: Path) -> Counter[str]:
    """Inbound message rows per ticket number, read from the SQLite file."""
    conn = sqlite3.connect(home / "intake-hub.sqlite3", timeout=10)
    try:
        rows = conn.execute(
            "SELECT t.number FROM message m JOIN ticket t ON t.id = m.ticket_id "
            "WHERE m.direction = 'in'"
        ).fetchall()
    finally:
        conn.close()
    return Counter(number for (number,) in rows)


def _journaled(home: Path) -> int:
    """Rows left in every spool file of the home."""
    total = 0
    for path in (home / "spool").glob("*.sqlite3"):
        conn = sqlite3.connect(path, timeout=10)
        try:
            total += conn.execute("SELECT count(*) FROM spool").fetchone()[0]
        finally:
            conn.close()
    return total


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


async def _load_then_kill(served: Served, after: int, kill: Callable[[], None]) -> list[str]:
    """Post from many clients; `kill` once `after` were accepted; returns the accepted."""
    accepted: list[str] = []
    killed = asyncio.Event()

    async def client(c: int, session: aiohttp.ClientSession) -> None:
        i = 0
        while not killed.is_set():
            i += 1
            body = {"name": f"客户{c}", "contact": f"k{c}-{i}@example.com", "text": f"包裹{i}"}
            try:
                async with session.post(served.url + "/api/v1/web/messages", json=body) as resp:
                    if resp.status == 202:
                        accepted.append(str((await resp.json())["ticket"]))
            except aiohttp.ClientError:
                return
            if len(accepted) >= after and not killed.is_set():
                kill()
                killed.set()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(c, session) for c in range(CLIENTS)))
    return accepted


def _wait_stored(home: Path, numbers: set[str], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while not numbers <= set(stored := _inbound(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return stored


def test_sigkilled_serve_stores_every_accepted_message_once(tmp_path: Path) -> None:
    """SIGKILL mid-load, restart on the same home: every 202 is stored, none twice."""
    home = tmp_path / "home"
    home.mkdir()
    first = start_service(home, **SLOW, **QUIET, **ONE)
    accepted = asyncio.run(_load_then_kill(first, 1500, lambda: first.proc.kill()))
    assert first.proc.wait(10) == -signal.SIGKILL
    # The kill found messages accepted and not yet stored, or it proves nothing.
    assert len(set(accepted) - set(_inbound(home))) > 100

    second = start_service(home, **QUIET, **ONE)
    try:
        _assert_stored_once(home, accepted)
        assert second.stop() == 0
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
    assert _journaled(home) == 0


def test_sigkilled_processes_are_replaced_and_lose_nothing(tmp_path: Path) -> None:
    """Every process of a 2-process serve SIGKILLed mid-load: the restarted ones store all."""
    home = tmp_path / "home"
    home.mkdir()
    served = start_service(home, **SLOW, **QUIET, INTAKE_HUB_PROCESSES="2")
    try:
        children = _children(served.proc.pid)
        assert len(children) == 2

        def kill() -> None:
            for pid in children:
                os.kill(pid, signal.SIGKILL)

        accepted = asyncio.run(_load_then_kill(served, 1500, kill))
        _gone(children)
        assert len(set(accepted) - set(_inbound(home))) > 100
        _assert_stored_once(home, accepted)
        assert served.stop() == 0
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
    assert _journaled(home) == 0


def _assert_stored_once(home: Path, accepted: list[str]) -> None:
    """Every accepted ticket gets its inbound message (within a minute), and none gets two."""
    stored = _wait_stored(home, set(accepted), timeout=60)
    missing = set(accepted) - set(stored)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted messages lost"
    assert [n for n, count in stored.items() if count > 1] == []
