"""RabbitMQ itself stopped and started under load, and a gateway started before the broker.

Each test boots a RabbitMQ node of its own (`rabbit_node.py`): stopping the broker on 5672
would break every other test and engineer on this machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.conftest import (
    Cluster,
    assert_exactly_once,
    paced_load,
    ticket_numbers,
    wait_stored,
)
from tests.faults.rabbit_node import RabbitNode

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.timeout(90)]

N = 6000  # at most: the load stops a second after the broker is back
RATE = 150.0  # messages per second; `rabbitmqctl` alone takes seconds on a busy box
OUTAGE_S = 2.0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own, not started yet; stopped after, however the test ends."""
    n = RabbitNode(tmp_path / "rabbit")
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture
def private_cluster(tmp_path: Path, node: RabbitNode, pg_db: str) -> Iterator[Cluster]:
    """Gateway and worker processes on the private node and a database of their own."""
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(home, pg_db, node.url)
    try:
        yield c
    finally:
        c.kill_all()


async def _spool_seen(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    """The spool depth `/readyz` shows while the broker is unreachable (else 0), and the gauge."""
    async with session.get(url + "/readyz") as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    degraded = body["degraded"]
    depth = int(degraded["spool"]) if degraded.get("broker") == "unreachable" else 0
    async with session.get(url + "/metrics") as resp:
        lines = (await resp.text()).splitlines()
    gauge = next(float(x.split()[1]) for x in lines if x.startswith("intake_hub_spool_depth "))
    return depth, gauge


async def _settled(url: str, timeout: float = 20) -> dict[str, Any]:
    """Wait until the gateway's /readyz is 200 with nothing degraded; returns the body."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url + "/readyz") as resp:
                body: dict[str, Any] = await resp.json()
                if resp.status == 200 and not body["degraded"]:
                    return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.1)


def test_broker_stopped_and_started_under_load_loses_nothing(
    private_cluster: Cluster, node: RabbitNode
) -> None:
    """rabbitmqctl stop_app/start_app mid-load: every 202 stored exactly once, spooled meanwhile."""
    node.start()
    gateway = private_cluster.start("gateway")
    private_cluster.start("worker")
    accepted: list[str] = []
    statuses: list[int] = []

    async def main() -> tuple[int, float]:
        done = asyncio.Event()
        load = asyncio.create_task(
            paced_load(gateway.url, N, RATE, "rs", accepted, statuses, until=done)
        )
        await asyncio.sleep(1.0)
        await asyncio.to_thread(node.stop_app)
        deepest, gauge = 0, 0.0
        async with aiohttp.ClientSession() as session:
            stopped_at = time.monotonic()
            while time.monotonic() - stopped_at < OUTAGE_S or deepest == 0:
                assert time.monotonic() - stopped_at < 10, "the gateway never spooled"
                depth, seen = await _spool_seen(session, gateway.url)
                deepest, gauge = max(deepest, depth), max(gauge, seen)
                await asyncio.sleep(0.1)
        await asyncio.to_thread(node.start_app)
        await asyncio.sleep(1.0)
        done.set()
        await load
        return deepest, gauge

    deepest, gauge = asyncio.run(main())
    assert deepest > 0 and gauge > 0
    sent = len(statuses)
    assert statuses == [202] * sent
    assert asyncio.run(wait_stored(private_cluster.database_url, sent, timeout=30)) == sent
    assert_exactly_once(asyncio.run(ticket_numbers(private_cluster.database_url)), accepted)
    asyncio.run(_settled(gateway.url))
    assert gateway.stop() == 0


def test_gateway_started_before_the_broker_spools_then_forwards(
    private_cluster: Cluster, node: RabbitNode
) -> None:
    """No broker at start: the gateway starts, answers 202 from the spool, forwards once up."""
    n = 200
    gateway = private_cluster.start("gateway")
    accepted: list[str] = []

    async def before_broker() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            for i in range(n):
                body = {"name": f"早{i}", "contact": f"early{i}@example.com", "text": f"第{i}单"}
                async with session.post(gateway.url + "/api/v1/web/messages", json=body) as resp:
                    assert resp.status == 202, await resp.text()
                    accepted.append(str((await resp.json())["ticket"]))
            async with session.get(gateway.url + "/readyz") as resp:
                assert resp.status == 200
                ready: dict[str, Any] = await resp.json()
            depth, gauge = await _spool_seen(session, gateway.url)
            assert depth == n and gauge == n
            return ready

    ready = asyncio.run(before_broker())
    assert ready == {"status": "degraded", "degraded": {"broker": "unreachable", "spool": n}}

    node.start()
    private_cluster.start("worker")
    assert asyncio.run(wait_stored(private_cluster.database_url, n, timeout=30)) == n
    assert_exactly_once(asyncio.run(ticket_numbers(private_cluster.database_url)), accepted)
    asyncio.run(_settled(gateway.url))
    assert gateway.stop() == 0
