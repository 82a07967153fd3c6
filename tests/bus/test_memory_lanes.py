"""The in-process bus serves messages someone waits on ahead of the bulk backlog."""

from __future__ import annotations

import asyncio

from intake_hub.bus import MemoryBus, QueueSpec, RetryPolicy
from intake_hub.envelope import Envelope
from intake_hub.testing import make_envelope


async def test_a_waited_on_message_overtakes_the_backlog() -> None:
    """Behind 200 queued web messages, a WeChat message with reply_to is handled next."""
    bus = MemoryBus()
    await bus.declare(QueueSpec("t.work", ("ticket.received.*",), RetryPolicy(delays=(0.05,))))
    for _ in range(200):
        await bus.publish("ticket.received.web", make_envelope())
    waited = make_envelope(channel="wechat", reply_to="node-1")
    await bus.publish("ticket.received.wechat", waited)
    order: list[Envelope] = []
    done = asyncio.Event()

    async def handle(env: Envelope) -> None:
        order.append(env)
        if len(order) == 201:
            done.set()

    await bus.consume("t.work", handle, prefetch=1)
    await asyncio.wait_for(done.wait(), 5)
    await bus.close()
    assert order[0] == waited
    assert [e.channel for e in order[1:]] == ["web"] * 200


async def test_a_full_queue_still_takes_a_waited_on_message() -> None:
    """Back-pressure holds bulk publishes at the bound; a reply_to message goes straight in."""
    bus = MemoryBus(max_depth=10)
    await bus.declare(QueueSpec("t.work", ("ticket.received.*",), RetryPolicy(delays=(0.05,))))
    for _ in range(10):
        await bus.publish("ticket.received.web", make_envelope())
    bulk = asyncio.create_task(bus.publish("ticket.received.web", make_envelope()))
    waited = make_envelope(channel="wechat", reply_to="node-1")
    await asyncio.wait_for(bus.publish("ticket.received.wechat", waited), 1)
    await asyncio.sleep(0.05)
    assert not bulk.done()
    assert await bus.depth("t.work") == 11
    seen: list[Envelope] = []

    async def handle(env: Envelope) -> None:
        seen.append(env)

    await bus.consume("t.work", handle, prefetch=1)
    await asyncio.wait_for(bulk, 5)
    assert await bus.drain(5)
    await bus.close()
    assert seen[0] == waited and len(seen) == 12

