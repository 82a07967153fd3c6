"""`serve` on several processes: one port, both cores, one set of figures, one stop."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from intake_hub import ticketno
from intake_hub.api.peers import run_dir
from tests.conftest import ADMIN_TOKEN
from tests.faults.conftest import execute
from tests.served.conftest import Served, run_refused, start_service


def _node(number: str) -> int:
    value = 0
    for char in number:
        value = value * 32 + ticketno.ALPHABET.index(char)
    return (value >> ticketno.SEQ_BITS) & (ticketno.MAX_NODES - 1)


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _post(n: int, url: str, start: int = 0, text: str = "没发货") -> list[str]:
    """`n` messages, each on a connection of its own (so the kernel spreads them)."""

    async def one(i: int) -> str | None:
        body = {"name": "吴", "contact": f"w{i}@example.com", "text": f"第 {i} 单{text}"}
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.post(url + "/api/v1/web/messages", json=body) as resp,
        ):
            return (await resp.json())["ticket"] if resp.status == 202 else None

    got = await asyncio.gather(*(one(i) for i in range(start, start + n)))
    return [t for t in got if t]


def _stored(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {r[0] for r in db.execute("SELECT number FROM ticket")}


@pytest.fixture(scope="module")
def shared_two() -> Iterator[list[tuple[Served, list[int]]]]:
    """The module's `serve` of two processes and its first children (a list, so a stopped
    one can be replaced)."""
    started: list[tuple[Served, list[int]]] = []
    yield started
    for served, _ in started:
        if served.proc.poll() is None:
            served.stop()


def _shared(
    shared: list[tuple[Served, list[int]]], tmp_path_factory: pytest.TempPathFactory, fresh: bool
) -> Served:
    if shared:
        served, first = shared[-1]
        running = served.proc.poll() is None
        if running and (not fresh or sorted(_children(served.proc.pid)) == first):
            return served
    home = tmp_path_factory.mktemp("two") / "home"
    home.mkdir()
    served = start_service(home, INTAKE_HUB_PROCESSES="2")
    _wait_for(lambda: len(_children(served.proc.pid)) == 2)
    shared.append((served, sorted(_children(served.proc.pid))))
    return served


@pytest.fixture
def two(
    shared_two: list[tuple[Served, list[int]]], tmp_path_factory: pytest.TempPathFactory
) -> Served:
    """A running `serve` of two processes, shared by this module's tests (starting one costs
    seconds); a test that stopped it leaves the next one a new one on a fresh home.

    The tests post from contacts of their own and compare ticket numbers and counts
    against what was there before them, so none depends on another's messages.
    """
    return _shared(shared_two, tmp_path_factory, fresh=False)


@pytest.fixture
def two_unhurt(
    shared_two: list[tuple[Served, list[int]]], tmp_path_factory: pytest.TempPathFactory
) -> Served:
    """`two`, with neither process replaced yet (else a new `serve`): a replacement may
    take a while before the kernel hands it connections."""
    return _shared(shared_two, tmp_path_factory, fresh=True)


def _wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _answers(sock: Path) -> bool:
    """Whether a process listens on the peer socket (a killed one leaves its file behind)."""
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(sock))
        except OSError:
            return False
        return True


def _ready(two: Served) -> None:
    """Both processes are up and listening for their peers."""
    _wait_for(lambda: len(_children(two.proc.pid)) == 2)
    _wait_for(lambda: len(list((two.home / "run").glob("serve-*.sock"))) == 2)
    _wait_for(lambda: all(_answers(p) for p in (two.home / "run").glob("serve-*.sock")))


def test_both_processes_take_messages_and_metrics_count_all(two_unhurt: Served) -> None:
    """Messages on one port are numbered by two processes; /metrics counts every one."""
    two = two_unhurt
    _ready(two)
    stored_before = _metric(two.url, "intake_hub_stored_total")
    received_before = _metric(two.url, "intake_hub_received_total")
    before = _stored(two.database)
    accepted = asyncio.run(_post(60, two.url, start=1000))
    assert len(accepted) == 60
    assert len({_node(t) for t in accepted}) == 2
    _wait_for(lambda: _metric(two.url, "intake_hub_stored_total") == stored_before + 60)
    assert _metric(two.url, "intake_hub_received_total") == received_before + 60
    assert _stored(two.database) == before | set(accepted)


def test_a_killed_process_is_started_again(two: Served) -> None:
    """SIGKILL one process: the supervisor starts another, and the port keeps answering."""
    _ready(two)
    victim = _children(two.proc.pid)[0]
    subprocess.run(["kill", "-KILL", str(victim)], check=True)
    _wait_for(lambda: victim not in _children(two.proc.pid) and len(_children(two.proc.pid)) == 2)
    _wait_for(lambda: len(list((two.home / "run").glob("serve-*.sock"))) == 2)
    accepted = asyncio.run(_post(20, two.url, start=2000))
    assert len(accepted) == 20
    _wait_for(lambda: set(accepted) <= _stored(two.database))
    assert two.proc.poll() is None


def test_sigterm_stops_every_process(two: Served) -> None:
    """SIGTERM to `serve` stops all its processes after they stored what they accepted."""
    _ready(two)
    children = _children(two.proc.pid)
    before = _stored(two.database)
    accepted = asyncio.run(_post(100, two.url, start=3000))
    assert two.stop(signal.SIGTERM) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    assert _stored(two.database) == before | set(accepted)


def test_a_fixed_node_id_with_several_processes_is_refused(tmp_path: Path) -> None:
    """INTAKE_HUB_NODE_ID with INTAKE_HUB_PROCESSES=2 exits 2 and says what to change."""
    env = {
        "PATH": "/usr/bin:/bin",
        "INTAKE_HUB_HOME": str(tmp_path / "home"),
        "INTAKE_HUB_NODE_ID": "7",
        "INTAKE_HUB_PROCESSES": "2",
    }
    done = run_refused(env)
    assert done.returncode == 2
    assert "INTAKE_HUB_NODE_ID" in done.stderr and "INTAKE_HUB_PROCESSES=1" in done.stderr


POISON = """
CREATE OR REPLACE FUNCTION refuse_poison() RETURNS trigger AS $$
BEGIN
  IF NEW.text LIKE '%POISON%' THEN RAISE EXCEPTION 'poisoned message'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER refuse_poison BEFORE INSERT ON message
  FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


@pytest.mark.postgres
def test_dead_letters_of_every_process_in_one_list(tmp_path: Path, pg_url: str) -> None:
    """Messages the database refuses, parked by both processes: one list, one purge."""
    asyncio.run(execute(pg_url, POISON))
    home = tmp_path / "home"
    home.mkdir()
    served = start_service(
        home,
        INTAKE_HUB_PROCESSES="2",
        INTAKE_HUB_DATABASE_URL=pg_url,
        INTAKE_HUB_RETRY_DELAYS="0.1",
    )
    try:
        _wait_for(lambda: len(list(run_dir(home).glob("serve-*.sock"))) == 2)
        accepted = asyncio.run(_post(30, served.url, text="POISON 退货"))
        assert len({_node(t) for t in accepted}) == 2
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def parked() -> list[dict[str, str]]:
            request = urllib.request.Request(served.url + "/api/v1/admin/dlq", headers=auth)
            with urllib.request.urlopen(request, timeout=10) as resp:
                items: list[dict[str, str]] = json.loads(resp.read())["items"]
                return items

        _wait_for(lambda: len(parked()) == 30)
        assert {d["ticket"] for d in parked()} == set(accepted)
        purge = urllib.request.Request(
            served.url + "/api/v1/admin/dlq/purge",
            data=b"{}",
            headers=auth | {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(purge, timeout=10) as resp:
            assert json.loads(resp.read())["count"] == 30
        assert parked() == []
    finally:
        served.stop()
        asyncio.run(execute(pg_url, "DROP TRIGGER refuse_poison ON message"))
