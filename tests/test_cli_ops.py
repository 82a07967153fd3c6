"""Operator commands: process roles refuse to run without a broker, dead letters, topology."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from intake_hub.bus import RabbitBus, RetryPolicy
from intake_hub.cli import main, parser
from intake_hub.runtime.pipeline import topology
from tests.bus.conftest import AMQP_URL, _ensure_broker


@pytest.mark.parametrize("role", ["gateway", "worker"])
def test_roles_refuse_to_start_without_a_broker(
    role: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gateway` and `worker` exit 2 naming INTAKE_HUB_AMQP_URL when it is unset."""
    monkeypatch.delenv("INTAKE_HUB_AMQP_URL", raising=False)
    assert main([role]) == 2
    assert "INTAKE_HUB_AMQP_URL" in capsys.readouterr().err


def test_worker_takes_known_stages_only(capsys: pytest.CaptureFixture[str]) -> None:
    """`--stage` is repeatable and refuses a stage the pipeline does not have."""
    args = parser().parse_args(["worker", "--stage", "route", "--stage", "persist"])
    assert args.stage == ["route", "persist"]
    with pytest.raises(SystemExit):
        parser().parse_args(["worker", "--stage", "shipping"])
    assert "invalid choice" in capsys.readouterr().err


def test_dlq_on_the_in_process_bus_points_to_the_admin_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a broker, `dlq list` explains that dead letters live in the serving process."""
    monkeypatch.delenv("INTAKE_HUB_AMQP_URL", raising=False)
    assert main(["dlq", "list"]) == 2
    assert "/api/v1/admin/dlq" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dlq", "--help"])
    help_text = capsys.readouterr().out
    assert "in-process bus" in help_text and "admin API" in help_text


@pytest.fixture
def vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own, deleted after."""
    if not _ensure_broker():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672 and could not be started")
    name = f"topo-{uuid.uuid4().hex[:10]}"
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", name], check=True, capture_output=True)
    try:
        subprocess.run(
            [*ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield name
    finally:
        subprocess.run([*ctl, "delete_vhost", name], check=True, capture_output=True)


async def _declare_like_a_worker(url: str) -> None:
    bus = RabbitBus(url)
    await bus.start()
    try:
        for spec in topology(RetryPolicy((1.0, 5.0, 30.0))):
            await bus.declare(spec)
    finally:
        await bus.close()


def _comparable(defs: dict[str, Any], vhost: str) -> dict[str, Any]:
    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items if i.get("vhost") == vhost]

    return {
        "exchanges": sorted(
            (e["name"], e["type"], e["durable"], e["auto_delete"])
            for e in mine(defs["exchanges"])
            if e["name"]
        ),
        "queues": sorted(
            (
                q["name"],
                q["durable"],
                q["auto_delete"],
                orjson.dumps(q["arguments"], option=orjson.OPT_SORT_KEYS),
            )
            for q in mine(defs["queues"])
        ),
        "bindings": sorted(
            (b["source"], b["destination"], b["destination_type"], b["routing_key"])
            for b in mine(defs["bindings"])
        ),
    }


def test_exported_topology_is_what_the_bus_declares(
    vhost: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`topology --export` equals what a worker declares on the real broker, to the argument."""
    monkeypatch.delenv("INTAKE_HUB_RETRY_DELAYS", raising=False)
    # This machine runs RabbitMQ 3, whose parking queues must not carry a delivery limit.
    assert main(["topology", "--export", "--vhost", vhost, "--rabbitmq", "3"]) == 0
    exported = orjson.loads(capsys.readouterr().out)
    assert exported["vhosts"] == [{"name": vhost}]

    asyncio.run(_declare_like_a_worker(f"{AMQP_URL}{vhost}"))
    dump = subprocess.run(
        ["rabbitmqctl", "-q", "export_definitions", "-"], check=True, capture_output=True
    )
    declared = orjson.loads(dump.stdout)

    want = _comparable(exported, vhost)
    assert want == _comparable(declared, vhost)
    assert len(want["queues"]) == 4 * 6  # per stage: work, fast lane, parking, 3 retry tiers
    assert ("intake_hub", "intake_hub.classify", "queue", "ticket.received.*") in want["bindings"]


def test_rabbitmq_4_definitions_lift_the_parking_queue_delivery_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """For RabbitMQ 4 the parking queues carry `x-delivery-limit: -1`, for RabbitMQ 3 not."""
    assert main(["topology", "--export"]) == 0
    queues = {q["name"]: q["arguments"] for q in orjson.loads(capsys.readouterr().out)["queues"]}
    assert queues["intake_hub.persist.dead"]["x-delivery-limit"] == -1
    assert "x-delivery-limit" not in queues["intake_hub.persist"]
    assert queues["intake_hub.persist"]["x-dead-letter-strategy"] == "at-least-once"
    assert main(["topology", "--export", "--rabbitmq", "3"]) == 0
    queues = {q["name"]: q["arguments"] for q in orjson.loads(capsys.readouterr().out)["queues"]}
    assert "x-delivery-limit" not in queues["intake_hub.persist.dead"]
