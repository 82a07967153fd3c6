"""What only the RabbitMQ bus has: broker-side queue types, persistence, crashes, two processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable

import aio_pika
import pytest
from aio_pika import DeliveryMode
from aiormq.exceptions import ProbableAuthenticationError

from intake_hub import topics
from intake_hub.bus import BrokerUnreachable, QueueSpec, RabbitBus, RetryPolicy
from intake_hub.envelope import Envelope, Reply
from intake_hub.runtime.intake import Intake
from intake_hub.testing import make_envelope
from tests.bus.test_contract import Inbox
from tests.served.conftest import free_port

FAST = RetryPolicy(delays=(0.05, 0.1))
MakeBus = Callable[[], RabbitBus]


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True
    ).stdout


def _broker_queues(prefix: str) -> dict[str, dict[str, object]]:
    out = _rabbitmqctl("list_queues", "name", "type", "durable", "arguments", "--formatter", "json")
    queues = {q["name"]: q for q in json.loads(out) if q["name"].startswith(prefix)}
    for q in queues.values():
        # RabbitMQ 3 lists arguments as [name, type, value] triples, 4 as an object.
        if isinstance(q["arguments"], list):
            q["arguments"] = {name: value for name, _, value in q["arguments"]}
    return queues


def _sever(bus: RabbitBus) -> None:
    """Have the broker drop the bus's connection, as a network cut or a killed process would."""
    listed = _rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    for line in listed.splitlines():
        pid, _, props = line.partition("\t")
        if f'{{"connection_name","intake-hub/{bus.node}"}}' in props:
            _rabbitmqctl("close_connection", pid, "test: connection cut")
            return
    raise AssertionError(f"no connection of node {bus.node}")


async def test_declared_queues_are_quorum_with_at_least_once_dead_lettering(
    rabbit_buses: MakeBus,
) -> None:
    """Work, fast-lane, retry and parking queues are durable quorum queues, rightly argued."""
    bus = rabbit_buses()
    await bus.start()
    spec = QueueSpec("t.kinds", ("ticket.kinds",), FAST)
    await bus.declare(spec)
    again = rabbit_buses()
    await again.start()
    await again.declare(spec)  # identical arguments: a second declare is accepted

    ns = bus._ns
    work, dead = f"{ns}t.kinds", f"{ns}t.kinds.dead"
    fast = f"{ns}t.kinds.fast"
    tiers = [f"{ns}t.kinds.retry.50ms", f"{ns}t.kinds.retry.100ms"]
    queues = _broker_queues(ns)
    assert set(queues) == {work, fast, dead, *tiers}
    assert all(q["type"] == "quorum" and q["durable"] for q in queues.values())
    for lane in (work, fast):
        lane_args = queues[lane]["arguments"]
        assert isinstance(lane_args, dict)
        assert lane_args["x-dead-letter-routing-key"] == dead
        assert lane_args["x-dead-letter-strategy"] == "at-least-once"
        assert lane_args["x-overflow"] == "reject-publish"
    for tier, ttl in zip(tiers, (50, 100), strict=True):
        args = queues[tier]["arguments"]
        assert isinstance(args, dict)
        assert args["x-message-ttl"] == ttl
        assert args["x-dead-letter-exchange"] == ""
        assert args["x-dead-letter-routing-key"] == work  # back to this queue only, no fan-out
        assert args["x-dead-letter-strategy"] == "at-least-once"
        assert args["x-overflow"] == "reject-publish"


async def test_published_messages_are_persistent_json_with_the_envelope_id(
    rabbit_buses: MakeBus, amqp_url: str
) -> None:
    """Published messages are persistent JSON whose message_id is the envelope id."""
    bus = rabbit_buses()
    await bus.start()
    await bus.declare(QueueSpec("t.persist", ("ticket.persist",), FAST))
    env = make_envelope()
    await bus.publish("ticket.persist", env)

    conn = await aio_pika.connect(amqp_url)
    try:
        channel = await conn.channel()
        queue = await channel.get_queue(f"{bus._ns}t.persist", ensure=False)
        message = await queue.get(no_ack=False)
        assert message.delivery_mode == DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.message_id == str(env.id)
        await message.nack(requeue=True)
    finally:
        await conn.close()


async def test_message_survives_its_consumer_connection_dying_mid_handler(
    rabbit_buses: MakeBus,
) -> None:
    """A handler whose connection drops mid-message never acked it: another bus gets it."""
    spec = QueueSpec("t.survive", ("ticket.survive",), FAST)
    doomed, survivor = rabbit_buses(), rabbit_buses()
    await doomed.start()
    await survivor.start()
    await doomed.declare(spec)
    await survivor.declare(spec)
    started = asyncio.Event()

    async def hang(env: Envelope) -> None:
        started.set()
        await asyncio.sleep(3600)

    await doomed.consume("t.survive", hang)
    env = make_envelope()
    await doomed.publish("ticket.survive", env)
    await asyncio.wait_for(started.wait(), 5)
    inbox = Inbox()
    await survivor.consume("t.survive", inbox)
    _sever(doomed)
    assert await inbox.wait_for(1) == [env]


async def test_same_envelope_published_twice_is_delivered_twice(rabbit_buses: MakeBus) -> None:
    """The bus does not dedupe: a re-sent envelope arrives again; the database's unique key does."""
    bus = rabbit_buses()
    await bus.start()
    await bus.declare(QueueSpec("t.twice", ("ticket.twice",), FAST))
    inbox = Inbox()
    await bus.consume("t.twice", inbox)
    env = make_envelope()
    await bus.publish("ticket.twice", env)
    await bus.publish("ticket.twice", env)
    assert await inbox.wait_for(2) == [env, env]


async def test_request_reply_across_two_bus_instances(rabbit_buses: MakeBus) -> None:
    """An Intake on bus A gets the auto-reply a stage on bus B publishes to A's node."""
    gateway, worker = rabbit_buses(), rabbit_buses()
    await gateway.start()
    await worker.start()
    await worker.declare(QueueSpec("t.respond", (topics.RECEIVED_ANY,), FAST))

    async def respond(env: Envelope) -> None:
        assert env.reply_to is not None
        answered = env.model_copy(update={"reply": Reply(kind="ack", text="收到")})
        await worker.publish(topics.reply_topic(env.reply_to), answered)

    await worker.consume("t.respond", respond)
    intake = Intake(gateway)
    await intake.start()
    try:
        reply = await intake.request(make_envelope(), budget=5)
    finally:
        await intake.close()
    assert reply == Reply(kind="ack", text="收到")


async def test_publishes_cut_off_by_a_lost_connection_are_resent(rabbit_buses: MakeBus) -> None:
    """Publishes in flight when the connection drops are re-sent after reconnect: none is lost."""
    bus = rabbit_buses()
    await bus.start()
    await bus.declare(QueueSpec("t.resend", ("ticket.resend",), FAST))
    confirmed: list[Envelope] = []
    cut = asyncio.Event()

    async def publisher() -> None:
        # Keep publishing across the cut and a little past the reconnect.
        while not cut.is_set():
            env = make_envelope()
            await bus.publish("ticket.resend", env)
            confirmed.append(env)
        for _ in range(5):
            env = make_envelope()
            await bus.publish("ticket.resend", env)
            confirmed.append(env)

    async def cutter() -> None:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(_sever, bus)
        cut.set()

    await asyncio.gather(cutter(), *(publisher() for _ in range(16)))
    inbox = Inbox()
    await bus.consume("t.resend", inbox)
    wanted = {e.id for e in confirmed}
    async with asyncio.timeout(20):
        # Re-sent publishes may arrive twice, so count distinct ids, not deliveries.
        while not wanted <= {e.id for e in inbox.items}:
            await asyncio.sleep(0.05)


async def test_start_tells_an_unreachable_broker_from_refused_credentials(amqp_url: str) -> None:
    """No broker on the port: BrokerUnreachable (a gateway waits); a wrong password is not that."""
    with pytest.raises(BrokerUnreachable):
        await RabbitBus(f"amqp://guest:guest@127.0.0.1:{free_port()}/").start()
    wrong = amqp_url.replace("guest:guest@", "guest:not-the-password@")
    with pytest.raises(ProbableAuthenticationError):
        await RabbitBus(wrong).start()
