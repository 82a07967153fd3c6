"""PostgreSQL refusing connections for several seconds: nothing lost, processing resumes."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from tests.conftest import _admin
from tests.faults.conftest import Cluster, post_many, stored, ticket_numbers, wait_stored

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.timeout(90)]

N = 300
OUTAGE_S = 4.0


def _database_off(name: str) -> None:
    asyncio.run(_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    asyncio.run(
        _admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
    )


def _database_on(name: str) -> None:
    asyncio.run(_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))


def test_database_outage_loses_nothing(cluster: Cluster) -> None:
    """Connections refused and cut for a few seconds mid-stream: all N stored exactly once."""
    name = cluster.database_url.rsplit("/", 1)[1]
    gateway = cluster.start("gateway")
    worker = cluster.start("worker")
    accepted: list[str] = []

    def load() -> None:
        accepted.extend(asyncio.run(post_many(gateway.url, N, tag="outage", concurrency=4)))

    poster = threading.Thread(target=load)
    poster.start()
    asyncio.run(wait_stored(cluster.database_url, 20, timeout=20))
    _database_off(name)
    try:
        time.sleep(OUTAGE_S)
    finally:
        _database_on(name)
    poster.join(60)

    assert len(accepted) == N
    assert asyncio.run(wait_stored(cluster.database_url, N, timeout=45)) == N
    numbers = asyncio.run(ticket_numbers(cluster.database_url))
    assert sorted(numbers) == sorted(accepted)
    assert worker.stop(signal.SIGTERM) == 0
    assert gateway.stop(signal.SIGTERM) == 0
    assert asyncio.run(stored(cluster.database_url)) == N
    dead = cluster.cli("dlq", "list")
    assert dead.returncode == 0, dead.stderr
    assert "no dead letters" in dead.stdout
