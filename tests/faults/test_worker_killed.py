"""Workers killed or stopped mid-stream: every accepted message is stored exactly once."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.faults.conftest import (
    Cluster,
    assert_exactly_once,
    execute,
    post_many,
    stored,
    ticket_numbers,
    wait_stored,
)

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.timeout(90)]

N = 400

# A slow database, so the stream is still flowing when the worker dies (about 2 s for N).
SLOW_INSERTS = """
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;
CREATE TRIGGER slow_insert BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION slow_insert();
"""


async def _stored_between(url: str, low: int, timeout: float) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await stored(url)) < low:
        assert asyncio.get_running_loop().time() < deadline, f"only {count} stored"
        await asyncio.sleep(0.01)
    return count




def test_sigkilled_worker_loses_nothing_and_duplicates_nothing(cluster: Cluster) -> None:
    """A worker SIGKILLed mid-stream: a second worker takes over and all N are stored once."""
    asyncio.run(execute(cluster.database_url, SLOW_INSERTS))
    gateway = cluster.start("gateway")
    accepted = asyncio.run(post_many(gateway.url, N, tag="kill"))
    assert len(set(accepted)) == N

    first = cluster.start("worker", INTAKE_HUB_CONCURRENCY="32", INTAKE_HUB_BATCH_SIZE="16")
    at_kill = asyncio.run(_stored_between(cluster.database_url, N // 5, timeout=30))
    first.stop(signal.SIGKILL)
    assert at_kill < N, "the worker finished before it could be killed: slow the database more"

    second = cluster.start("worker")
    assert asyncio.run(wait_stored(cluster.database_url, N, timeout=40)) == N
    assert second.stop(signal.SIGTERM) == 0
    assert asyncio.run(stored(cluster.database_url)) == N
    assert_exactly_once(asyncio.run(ticket_numbers(cluster.database_url)), accepted)
    assert gateway.stop(signal.SIGTERM) == 0


def test_sigterm_finishes_in_flight_and_exits_zero(cluster: Cluster) -> None:
    """SIGTERM mid-stream: the worker finishes what it holds, exits 0, the next one goes on."""
    asyncio.run(execute(cluster.database_url, SLOW_INSERTS))
    gateway = cluster.start("gateway")
    accepted = asyncio.run(post_many(gateway.url, N, tag="term"))

    first = cluster.start("worker", INTAKE_HUB_CONCURRENCY="32", INTAKE_HUB_BATCH_SIZE="16")
    asyncio.run(_stored_between(cluster.database_url, N // 5, timeout=30))
    assert first.stop(signal.SIGTERM, timeout=30) == 0
    at_exit = asyncio.run(stored(cluster.database_url))
    assert at_exit < N
    assert "could not settle" not in first.output()

    second = cluster.start("worker")
    assert asyncio.run(wait_stored(cluster.database_url, N, timeout=40)) == N
    assert_exactly_once(asyncio.run(ticket_numbers(cluster.database_url)), accepted)
    assert second.stop() == 0
    assert gateway.stop() == 0
