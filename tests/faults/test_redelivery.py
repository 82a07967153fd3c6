"""Duplicates and poison: a message published twice is one row; a poison one is parked."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
from typing import Any

import orjson
import pytest

from intake_hub.bus import RabbitBus, RetryPolicy
from intake_hub.envelope import Envelope
from intake_hub.runtime.pipeline import topology
from intake_hub.testing import make_envelope
from tests.faults.conftest import (
    Cluster,
    execute,
    fetch,
    post_many,
    rabbitmqctl,
    stored,
    ticket_numbers,
    wait_stored,
)

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.timeout(90)]


async def _publish_twice(url: str, envs: list[Envelope]) -> None:
    bus = RabbitBus(url)
    await bus.start()
    try:
        for spec in topology(RetryPolicy((0.3, 0.6))):
            await bus.declare(spec)
        for env in envs:
            # What a publisher does when the confirm of its first send was lost.
            await bus.publish("ticket.received.web", env)
            await bus.publish("ticket.received.web", env)
    finally:
        await bus.close()


def _queues_empty(vhost: str) -> bool:
    out = rabbitmqctl("list_queues", "-p", vhost, "name", "messages")
    counts = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return all(c == "0" for c in counts if c.isdigit())


def test_same_message_published_twice_is_stored_once(
    cluster: Cluster, vhost: tuple[str, str]
) -> None:
    """Each of 50 envelopes published twice, taken by two racing workers: 50 rows, no more."""
    cluster.start("worker")
    cluster.start("worker")
    envs = [make_envelope(f"第{i}个包裹没到", customer=f"dup{i}@example.com") for i in range(50)]
    asyncio.run(_publish_twice(cluster.amqp_url, envs))

    assert asyncio.run(wait_stored(cluster.database_url, 50, timeout=30)) == 50
    deadline = time.monotonic() + 20
    while not _queues_empty(vhost[0]):
        assert time.monotonic() < deadline, "the second copies were never consumed"
        time.sleep(0.2)
    time.sleep(0.5)  # the last duplicates' transactions, if any, commit
    assert asyncio.run(stored(cluster.database_url)) == 50
    assert sorted(asyncio.run(ticket_numbers(cluster.database_url))) == sorted(
        e.ticket for e in envs
    )
    listed = cluster.cli("dlq", "list")
    assert listed.stdout.strip() == "no dead letters", listed.stdout + listed.stderr


N = 100


def _poison_trigger(number: str) -> str:
    return f"""
CREATE FUNCTION reject_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.number = '{number}' THEN RAISE EXCEPTION 'ticket {number} rejected by test'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER reject_ticket BEFORE INSERT ON ticket FOR EACH ROW
  EXECUTE FUNCTION reject_ticket();
"""


def _dead(cluster: Cluster) -> list[dict[str, Any]]:
    listed = cluster.cli("dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items: list[dict[str, Any]] = orjson.loads(listed.stdout)
    return items


def _metrics(url: str) -> dict[str, float]:
    """The samples of a process's /metrics by name and labels."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name and not name.startswith("#")
    }


def test_poison_message_is_retried_parked_and_replayable(cluster: Cluster) -> None:
    """The database rejects one ticket: retried with delay, parked, the rest stored, replayed."""
    gateway = cluster.start("gateway")
    accepted = asyncio.run(post_many(gateway.url, N, tag="poison"))
    poison = accepted[N // 3]
    asyncio.run(execute(cluster.database_url, _poison_trigger(poison)))

    worker = cluster.start("worker")
    assert asyncio.run(wait_stored(cluster.database_url, N - 1, timeout=30)) == N - 1
    deadline = time.monotonic() + 20
    while not (dead := _dead(cluster)):
        assert time.monotonic() < deadline, "the poison message was never parked"
        time.sleep(0.2)
    assert len(dead) == 1
    (entry,) = dead
    assert entry["stage"] == "classify"  # the first stage of the worker's one local group
    assert entry["ticket"] == poison
    assert entry["attempts"] == 3  # INTAKE_HUB_RETRY_DELAYS=0.3,0.6: three tries in all
    assert f"ticket {poison} rejected by test" in entry["error"]
    log = worker.output()
    assert log.count(f"retrying {entry['envelope_id']}") == 2
    assert "in 0.30s" in log and "in 0.60s" in log
    metrics = _metrics(worker.url)
    assert metrics['intake_hub_stage_failed_total{stage="persist"}'] == 3
    assert metrics['intake_hub_stage_retried_total{stage="persist"}'] == 2
    assert poison not in asyncio.run(ticket_numbers(cluster.database_url))

    listed = cluster.cli("dlq", "list")
    assert f"ticket={poison}" in listed.stdout and "1 dead letter(s)" in listed.stdout
    shown = cluster.cli("dlq", "show", entry["id"])
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["ticket"] == poison

    asyncio.run(execute(cluster.database_url, "DROP TRIGGER reject_ticket ON ticket"))
    replayed = cluster.cli("dlq", "replay", entry["id"])
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "replayed 1"
    assert asyncio.run(wait_stored(cluster.database_url, N, timeout=20)) == N
    assert _dead(cluster) == []
    numbers = asyncio.run(ticket_numbers(cluster.database_url))
    assert sorted(numbers) == sorted(accepted)
    rows = asyncio.run(fetch(cluster.database_url, "SELECT count(*) FROM ticket"))
    assert rows[0][0] == N
    assert worker.stop(signal.SIGTERM) == 0
    assert gateway.stop(signal.SIGTERM) == 0
