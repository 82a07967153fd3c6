"""The bus contract: every bus implementation must pass these, unchanged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from intake_hub.bus import ATTEMPT, Bus, MemoryBus, QueueSpec, RabbitBus, RetryPolicy, Unroutable
from intake_hub.envelope import Envelope
from intake_hub.testing import make_envelope
from tests.bus.conftest import new_namespace, remove_topology

FAST = RetryPolicy(delays=(0.05, 0.1))


@pytest.fixture(params=["memory", "rabbit"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """A started bus of each implementation, closed after the test."""
    if request.param == "rabbit":
        rabbit = RabbitBus(request.getfixturevalue("amqp_url"), namespace=new_namespace())
        await rabbit.start()
        yield rabbit
        await remove_topology(rabbit)
        return
    b: Bus = MemoryBus()
    await b.start()
    yield b
    await b.close()


class Inbox:
    """Collects what a handler received, with a way to wait for a count."""

    def __init__(self) -> None:
        self.items: list[Envelope] = []
        self._changed = asyncio.Event()

    async def __call__(self, env: Envelope) -> None:
        self.items.append(env)
        self._changed.set()

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[Envelope]:
        """Wait until at least `n` envelopes arrived."""
        async with asyncio.timeout(timeout):
            while len(self.items) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def test_published_envelope_arrives_unchanged_on_wildcard_binding(bus: Bus) -> None:
    """A message published to ticket.received.web reaches a queue bound to ticket.received.*."""
    await bus.declare(QueueSpec("t.classify", ("ticket.received.*",), FAST))
    inbox = Inbox()
    await bus.consume("t.classify", inbox)
    env = make_envelope()
    await bus.publish("ticket.received.web", env)
    assert await inbox.wait_for(1) == [env]


async def test_publish_with_no_bound_queue_raises(bus: Bus) -> None:
    """A publish nobody would ever see fails loudly instead of vanishing."""
    await bus.declare(QueueSpec("t.only", ("ticket.received.web",), FAST))
    with pytest.raises(Unroutable):
        await bus.publish("ticket.nowhere", make_envelope())


async def test_every_bound_queue_gets_its_copy(bus: Bus) -> None:
    """Two queues bound to one topic each receive the message once."""
    await bus.declare(QueueSpec("t.a", ("ticket.#",), FAST))
    await bus.declare(QueueSpec("t.b", ("ticket.received.web",), FAST))
    a, b = Inbox(), Inbox()
    await bus.consume("t.a", a)
    await bus.consume("t.b", b)
    env = make_envelope()
    await bus.publish("ticket.received.web", env)
    assert await a.wait_for(1) == [env]
    assert await b.wait_for(1) == [env]


async def test_failed_message_is_retried_after_the_delay(bus: Bus) -> None:
    """A handler that fails once sees the message again, no sooner than the first delay."""
    await bus.declare(QueueSpec("t.flaky", ("ticket.flaky",), FAST))
    seen: list[float] = []
    done = asyncio.Event()

    async def flaky(env: Envelope) -> None:
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise RuntimeError("transient")
        done.set()

    await bus.consume("t.flaky", flaky)
    await bus.publish("ticket.flaky", make_envelope())
    await asyncio.wait_for(done.wait(), 5)
    assert len(seen) == 2
    assert seen[1] - seen[0] >= FAST.delays[0] * 0.9
    assert await bus.dead_letters("t.flaky") == []


async def test_handler_knows_which_delivery_attempt_it_runs(bus: Bus) -> None:
    """A handler failing every time sees attempts 1, 2, 3: what the retried counter relies on."""
    await bus.declare(QueueSpec("t.attempts", ("ticket.attempts",), FAST))
    seen: list[int] = []

    async def failing(env: Envelope) -> None:
        seen.append(ATTEMPT.get())
        raise RuntimeError("always")

    await bus.consume("t.attempts", failing)
    await bus.publish("ticket.attempts", make_envelope())
    async with asyncio.timeout(5):
        while not await bus.dead_letters("t.attempts"):
            await asyncio.sleep(0.02)
    assert seen == [1, 2, 3]
    assert ATTEMPT.get() == 1  # reset outside the handler


async def test_poison_message_is_dead_lettered_and_replayable(bus: Bus) -> None:
    """A message failing every attempt is parked with its error, then replays once fixed."""
    await bus.declare(QueueSpec("t.poison", ("ticket.poison",), FAST))
    attempts = 0
    fixed = False
    stored = Inbox()

    async def stage(env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        if not fixed:
            raise ValueError("bad rule")
        await stored(env)

    await bus.consume("t.poison", stage)
    env = make_envelope()
    await bus.publish("ticket.poison", env)
    async with asyncio.timeout(5):
        while not await bus.dead_letters("t.poison"):
            await asyncio.sleep(0.02)
    [dead] = await bus.dead_letters("t.poison")
    assert attempts == FAST.max_attempts
    assert "bad rule" in dead.error
    assert dead.attempts == FAST.max_attempts

    fixed = True
    assert await bus.replay("t.poison") == 1
    assert await stored.wait_for(1) == [env]
    assert await bus.dead_letters("t.poison") == []


async def test_purged_dead_letters_are_gone(bus: Bus) -> None:
    """Purging dead letters removes them for good."""
    await bus.declare(QueueSpec("t.purge", ("ticket.purge",), RetryPolicy(delays=())))

    async def fail(env: Envelope) -> None:
        raise RuntimeError("no")

    await bus.consume("t.purge", fail)
    for _ in range(3):
        await bus.publish("ticket.purge", make_envelope())
    async with asyncio.timeout(5):
        while len(await bus.dead_letters("t.purge")) < 3:
            await asyncio.sleep(0.02)
    first = (await bus.dead_letters("t.purge"))[0]
    assert await bus.purge_dead("t.purge", [first.id]) == 1
    assert len(await bus.dead_letters("t.purge")) == 2
    assert await bus.purge_dead("t.purge") == 2
    assert await bus.dead_letters("t.purge") == []


async def test_message_in_flight_when_consumer_dies_is_redelivered(bus: Bus) -> None:
    """A handler that never finishes (its consumer killed) leaves the message to the next one."""
    await bus.declare(QueueSpec("t.crash", ("ticket.crash",), FAST))
    started = asyncio.Event()

    async def hang(env: Envelope) -> None:
        started.set()
        await asyncio.sleep(3600)

    doomed = await bus.consume("t.crash", hang)
    env = make_envelope()
    await bus.publish("ticket.crash", env)
    await asyncio.wait_for(started.wait(), 5)
    await doomed.cancel()

    inbox = Inbox()
    await bus.consume("t.crash", inbox)
    assert await inbox.wait_for(1) == [env]


async def test_prefetch_bounds_concurrent_handlers(bus: Bus) -> None:
    """No more than `prefetch` messages are handled at once by one consumer."""
    await bus.declare(QueueSpec("t.prefetch", ("ticket.prefetch",), FAST))
    running = peak = handled = 0

    async def slow(env: Envelope) -> None:
        nonlocal running, peak, handled
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        handled += 1

    await bus.consume("t.prefetch", slow, prefetch=3)
    for _ in range(12):
        await bus.publish("ticket.prefetch", make_envelope())
    assert await bus.drain(10)
    assert handled == 12
    assert peak == 3


async def test_drain_waits_for_queued_and_in_flight_messages(bus: Bus) -> None:
    """Drain returns only when every published message has been handled."""
    await bus.declare(QueueSpec("t.drain", ("ticket.drain",), FAST))
    handled: list[Envelope] = []

    async def slow(env: Envelope) -> None:
        await asyncio.sleep(0.01)
        handled.append(env)

    await bus.consume("t.drain", slow, prefetch=4)
    for _ in range(20):
        await bus.publish("ticket.drain", make_envelope())
    assert await bus.drain(10)
    assert len(handled) == 20
    assert await bus.depth("t.drain") == 0


async def test_listen_receives_messages_for_this_node_only(bus: Bus) -> None:
    """A process-local listener gets messages of its exact topic, not its neighbours'."""
    inbox = Inbox()
    listener = await bus.listen(f"ticket.reply.{bus.node}", inbox)
    env = make_envelope()
    await bus.publish(f"ticket.reply.{bus.node}", env)
    assert await inbox.wait_for(1) == [env]
    with pytest.raises(Unroutable):
        await bus.publish("ticket.reply.someone-else", env)
    await listener.cancel()


async def test_a_waited_on_message_is_handled_while_every_handler_is_busy(bus: Bus) -> None:
    """With every handler stuck on the backlog, a message with reply_to is still handled."""
    await bus.declare(QueueSpec("t.lane", ("ticket.received.*",), FAST))
    release = asyncio.Event()
    handled: list[Envelope] = []

    async def handle(env: Envelope) -> None:
        if env.reply_to is None:
            await release.wait()
        handled.append(env)

    await bus.consume("t.lane", handle, prefetch=2)
    for _ in range(5):
        await bus.publish("ticket.received.web", make_envelope())
    waited = make_envelope(channel="wechat", reply_to="node-1")
    await bus.publish("ticket.received.wechat", waited)
    async with asyncio.timeout(5):
        while not handled:
            await asyncio.sleep(0.01)
    assert handled == [waited]
    release.set()
    async with asyncio.timeout(5):
        while len(handled) < 6:
            await asyncio.sleep(0.01)
    assert sorted(e.channel for e in handled) == ["web"] * 5 + ["wechat"]


async def test_bus_says_whether_messages_outlive_the_process_and_the_broker_is_there(
    bus: Bus,
) -> None:
    """Only the broker's messages outlive the process (what a spool is for); a started bus is up."""
    assert bus.durable is isinstance(bus, RabbitBus)
    assert bus.connected


async def test_finish_lets_handlers_in_flight_complete_then_takes_nothing_new(bus: Bus) -> None:
    """Finish waits for the handler in flight, acks its message, then leaves new ones queued."""
    await bus.declare(QueueSpec("t.finish", ("ticket.finish",), FAST))
    started, release = asyncio.Event(), asyncio.Event()
    handled: list[Envelope] = []

    async def held(env: Envelope) -> None:
        started.set()
        await release.wait()
        handled.append(env)

    await bus.consume("t.finish", held)
    env = make_envelope()
    await bus.publish("ticket.finish", env)
    await asyncio.wait_for(started.wait(), 5)
    finishing = asyncio.create_task(bus.finish(5))
    await asyncio.sleep(0.1)
    assert not finishing.done()
    release.set()
    assert await finishing
    assert handled == [env]
    assert await bus.dead_letters("t.finish") == []

    await bus.publish("ticket.finish", make_envelope())
    async with asyncio.timeout(5):
        while await bus.depth("t.finish") != 1:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert handled == [env]
    assert await bus.depth("t.finish") == 1


async def test_finish_abandons_a_handler_outliving_the_timeout_and_its_message_returns(
    bus: Bus,
) -> None:
    """A handler still running at the timeout is abandoned: False, and the message comes back."""
    await bus.declare(QueueSpec("t.stuck", ("ticket.stuck",), FAST))
    started = asyncio.Event()

    async def hang(env: Envelope) -> None:
        started.set()
        await asyncio.sleep(3600)

    await bus.consume("t.stuck", hang)
    env = make_envelope()
    await bus.publish("ticket.stuck", env)
    await asyncio.wait_for(started.wait(), 5)
    assert not await bus.finish(0.1)

    inbox = Inbox()
    await bus.consume("t.stuck", inbox)
    assert await inbox.wait_for(1) == [env]
