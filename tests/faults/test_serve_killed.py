"""`intake-hub serve` SIGKILLed under load: every message answered 202 is stored once."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.served.conftest import Served, start_service

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

CLIENTS = 64
# A pipeline slower than intake (one message per transaction), so a backlog is in flight.
SLOW = {"INTAKE_HUB_BATCH_SIZE": "1", "INTAKE_HUB_CONCURRENCY": "4"}
QUIET = {"INTAKE_HUB_RATE_LIMITS": "off"}


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


async def _load_then_kill(served: Served, after: int) -> list[str]:
    """Post from many clients; SIGKILL the server once `after` were accepted; the accepted."""
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
                served.proc.send_signal(signal.SIGKILL)
                killed.set()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(c, session) for c in range(CLIENTS)))
    served.proc.wait(10)
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
    first = start_service(home, **SLOW, **QUIET)
    accepted = asyncio.run(_load_then_kill(first, after=1500))
    assert first.proc.returncode == -signal.SIGKILL
    at_kill = _inbound(home)
    # The kill found messages accepted and not yet stored, or it proves nothing.
    assert len(set(accepted) - set(at_kill)) > 100, (len(accepted), len(at_kill))

    second = start_service(home, **QUIET)
    try:
        stored = _wait_stored(home, set(accepted), timeout=60)
        missing = set(accepted) - set(stored)
        assert not missing, f"{len(missing)} of {len(accepted)} accepted messages lost"
        assert [n for n, count in stored.items() if count > 1] == []
        assert second.stop() == 0
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
    assert _inbound(home) == stored
