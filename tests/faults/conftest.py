"""Real gateway and worker processes on a throw-away vhost and PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.bus.conftest import AMQP_URL, _ensure_broker
from tests.conftest import ADMIN_TOKEN, ROOT, _admin, pg_database
from tests.served.conftest import free_port

START_S = 30.0


def rabbitmqctl(*args: str) -> str:
    """Run `rabbitmqctl -q` and return its output."""
    done = subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)
    return done.stdout.decode()


@pytest.fixture(scope="session")
def broker() -> str:
    """The local RabbitMQ broker, started if it is down; a test needing it fails without it."""
    if not _ensure_broker():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672 and could not be started")
    return AMQP_URL


@pytest.fixture(scope="session")
def vhost_deletions() -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """`rabbitmqctl delete_vhost` runs started by `vhost`, waited for at the end of the run.

    Each `rabbitmqctl` boots an Erlang VM (over a second); nothing waits for a deleted vhost.
    """
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    yield running
    failed = []
    for name, proc in running:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failed.append(f"{name}: {err.decode(errors='replace')}")
    assert not failed, f"delete_vhost failed: {failed}"


@pytest.fixture
def vhost(
    broker: str, vhost_deletions: list[tuple[str, subprocess.Popen[bytes]]]
) -> Iterator[tuple[str, str]]:
    """A RabbitMQ virtual host of this test's own and its URL, deleted after (in the
    background: see `vhost_deletions`)."""
    name = f"fault-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name, f"{broker}{name}"
    finally:
        delete = subprocess.Popen(
            ["rabbitmqctl", "-q", "delete_vhost", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        vhost_deletions.append((name, delete))


@pytest.fixture
def pg_db(pg_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own (a copy of the run's migrated
    template), dropped after."""
    url = pg_database(pg_template, prefix="ih_fault_")
    name = url.rsplit("/", 1)[1]
    try:
        yield url
    finally:
        asyncio.run(_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@dataclass
class Proc:
    """One running intake-hub process and where to reach its HTTP port."""

    role: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the process and wait for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def output(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace")


@dataclass
class Cluster:
    """Gateways, workers and CLI commands sharing one vhost, one database and one home."""

    home: Path
    database_url: str
    amqp_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def env(self, **more: str) -> dict[str, str]:
        """The environment every process of the cluster gets."""
        return (
            dict(os.environ)
            | {
                "INTAKE_HUB_HOME": str(self.home),
                "INTAKE_HUB_DATABASE_URL": self.database_url,
                "INTAKE_HUB_AMQP_URL": self.amqp_url,
                "INTAKE_HUB_ADMIN_TOKEN": ADMIN_TOKEN,
                "INTAKE_HUB_SECRET_KEY": "fault-secret-0123456789abcdef",
                "INTAKE_HUB_RETRY_DELAYS": "0.3,0.6",
                "INTAKE_HUB_RULES_DIR": str(ROOT / "rules"),
                "INTAKE_HUB_CONNECTORS_DIR": str(ROOT / "connectors"),
                # The load comes from one address; the limits have tests of their own.
                "INTAKE_HUB_RATE_LIMITS": "off",
            }
            | self.extra_env
            | more
        )

    def start(self, role: str, *args: str, **env: str) -> Proc:
        """Start `intake-hub <role> <args>` and wait until its /readyz answers 200."""
        port = free_port()
        log = self.home.parent / f"{role}-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "intake_hub.cli", role, "--quiet", *args],
                cwd=ROOT,
                env=self.env(INTAKE_HUB_HTTP_PORT=str(port), **env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        p = Proc(role, proc, f"http://127.0.0.1:{port}", log)
        self.procs.append(p)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{role} exited with {proc.returncode}:\n{p.output()}")
            try:
                with urllib.request.urlopen(p.url + "/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return p
            except OSError:
                time.sleep(0.1)
        proc.kill()
        raise RuntimeError(f"{role} did not become ready:\n{p.output()}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an `intake-hub` command against the cluster and return what it printed."""
        return subprocess.run(
            [sys.executable, "-m", "intake_hub.cli", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def kill_all(self) -> None:
        """Kill whatever is still running."""
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(10)


@pytest.fixture
def cluster(tmp_path: Path, vhost: tuple[str, str], pg_db: str) -> Iterator[Cluster]:
    """An empty cluster; every process it started is killed after the test."""
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(home, pg_db, vhost[1])
    try:
        yield c
    finally:
        c.kill_all()


async def post_many(url: str, n: int, tag: str = "m", concurrency: int = 50) -> list[str]:
    """Post `n` web messages from `n` different customers; returns the accepted ticket numbers."""
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> str:
            body = {
                "name": f"客户{i}",
                "contact": f"{tag}{i}@example.com",
                "text": f"{tag} 第{i}个包裹没到",
            }
            async with limit, session.post(url + "/api/v1/web/messages", json=body) as resp:
                assert resp.status == 202, await resp.text()
                data: dict[str, Any] = await resp.json()
                return str(data["ticket"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def paced_load(
    url: str,
    n: int,
    rate: float,
    tag: str,
    accepted: list[str],
    statuses: list[int],
    until: asyncio.Event | None = None,
) -> None:
    """Post `n` web messages at `rate` per second, recording each status and accepted ticket;
    with `until`, no more are started once it is set."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            delay = max(0.0, t0 + i / rate - loop.time())
            if until is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), delay)
                if until.is_set():
                    return
            body = {"name": f"客户{i}", "contact": f"{tag}{i}@example.com", "text": f"第{i}个包裹"}
            async with session.post(url + "/api/v1/web/messages", json=body) as resp:
                statuses.append(resp.status)
                if resp.status == 202:
                    accepted.append(str((await resp.json())["ticket"]))

        await asyncio.gather(*(one(i) for i in range(n)))


def assert_exactly_once(numbers: list[str], accepted: list[str]) -> None:
    """Every accepted ticket number is stored, and none twice."""
    dupes = [n for n, c in Counter(numbers).items() if c > 1]
    assert not dupes, dupes
    assert set(numbers) == set(accepted)


async def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on its own connection."""
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def execute(url: str, sql: str) -> None:
    """Run one statement on its own connection."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def stored(url: str) -> int:
    """Inbound message rows stored so far."""
    rows = await fetch(url, "SELECT count(*) FROM message WHERE direction = 'in'")
    return int(rows[0][0])


async def wait_stored(url: str, n: int, timeout: float) -> int:
    """Wait until `n` inbound messages are stored (or `timeout` passes); returns the count."""
    deadline = time.monotonic() + timeout
    count = await stored(url)
    while count < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        count = await stored(url)
    return count


async def ticket_numbers(url: str) -> list[str]:
    """The number of every stored ticket (duplicates kept, so a test can see them)."""
    return [r[0] for r in await fetch(url, "SELECT number FROM ticket")]
