"""The pipeline runner: stage order, co-located stages, forwarding and replies."""

from __future__ import annotations

import asyncio

import pytest

from intake_hub import topics
from intake_hub.bus import MemoryBus, RetryPolicy
from intake_hub.envelope import Envelope, Labels, Reply, Route
from intake_hub.metrics import Metrics
from intake_hub.runtime.intake import Intake
from intake_hub.runtime.pipeline import Pipeline, local_groups
from intake_hub.stages import STAGE_NAMES, StageFn
from intake_hub.testing import make_envelope


def recording_stages(trace: list[str], stored: list[Envelope]) -> dict[str, StageFn]:
    """Stage functions that record their order and enrich like the real ones."""

    async def classify(env: Envelope) -> Envelope:
        trace.append("classify")
        return env.model_copy(update={"labels": Labels(category="refund")})

    async def respond(env: Envelope) -> Envelope:
        trace.append("respond")
        return env.model_copy(update={"reply": Reply(kind="ack", text=f"got {env.ticket}")})

    async def route(env: Envelope) -> Envelope:
        trace.append("route")
        return env.model_copy(update={"route": Route(team="finance")})

    async def persist(env: Envelope) -> Envelope:
        trace.append("persist")
        stored.append(env)
        return env

    return {"classify": classify, "respond": respond, "route": route, "persist": persist}


def test_local_groups_split_at_gaps() -> None:
    """Stages run in one process form groups of consecutive stages."""
    assert [[s.name for s in g] for g in local_groups(STAGE_NAMES)] == [list(STAGE_NAMES)]
    groups = local_groups({"classify", "route", "persist"})
    assert [[s.name for s in g] for g in groups] == [["classify"], ["route", "persist"]]
    with pytest.raises(ValueError, match="unknown stage"):
        local_groups({"clasify"})


@pytest.mark.parametrize("split", [STAGE_NAMES, ("classify",), ("classify", "route")])
async def test_every_stage_runs_in_order_however_stages_are_split(split: tuple[str, ...]) -> None:
    """Whether all stages share a process or not, each runs once, in order, fully enriched."""
    bus = MemoryBus()
    trace: list[str] = []
    stored: list[Envelope] = []
    fns = recording_stages(trace, stored)
    here = Pipeline(bus, fns, run=split, retry=RetryPolicy(()), prefetch=4, metrics=Metrics())
    rest = [n for n in STAGE_NAMES if n not in split]
    there = Pipeline(bus, fns, run=rest, retry=RetryPolicy(()), prefetch=4, metrics=Metrics())
    await here.start()
    if rest:
        await there.start()
    env = make_envelope()
    await bus.publish(topics.received("web"), env)
    assert await bus.drain(5)
    assert trace == list(STAGE_NAMES)
    [out] = stored
    assert out.labels and out.reply and out.route
    assert out.id == env.id
    await bus.close()


async def test_waiting_connector_gets_the_reply_of_its_own_envelope() -> None:
    """A synchronous channel receives the responder's output for its envelope, not another's."""
    bus = MemoryBus()
    pipeline = Pipeline(
        bus,
        recording_stages([], []),
        run=STAGE_NAMES,
        retry=RetryPolicy(()),
        prefetch=8,
        metrics=Metrics(),
    )
    await pipeline.start()
    intake = Intake(bus)
    await intake.start()
    envs = [make_envelope(text=f"message {i}") for i in range(5)]
    replies = await asyncio.gather(*(intake.request(e, budget=2.0) for e in envs))
    assert [r.text if r else None for r in replies] == [f"got {e.ticket}" for e in envs]
    await intake.close()
    await bus.close()


async def test_reply_budget_exceeded_falls_back_to_later() -> None:
    """When the responder is slower than the budget, the connector gets None at the deadline."""
    bus = MemoryBus()
    fns = recording_stages([], [])
    slow_respond = fns["respond"]

    async def slow(env: Envelope) -> Envelope | None:
        await asyncio.sleep(0.5)
        return await slow_respond(env)

    fns["respond"] = slow
    pipeline = Pipeline(
        bus, fns, run=STAGE_NAMES, retry=RetryPolicy(()), prefetch=2, metrics=Metrics()
    )
    await pipeline.start()
    intake = Intake(bus)
    await intake.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await intake.request(make_envelope(), budget=0.1) is None
    assert loop.time() - started < 0.4
    assert await bus.drain(5)
    await bus.close()


async def test_failing_stage_is_retried_then_dead_lettered_at_its_group_queue() -> None:
    """A stage that always raises leaves the message parked on its group's queue, replayable."""
    bus = MemoryBus()
    stored: list[Envelope] = []
    fns = recording_stages([], stored)
    broken = True
    good_route = fns["route"]

    async def route(env: Envelope) -> Envelope | None:
        if broken:
            raise RuntimeError("routing table missing")
        return await good_route(env)

    fns["route"] = route
    pipeline = Pipeline(
        bus, fns, run=STAGE_NAMES, retry=RetryPolicy((0.01, 0.01)), prefetch=2, metrics=Metrics()
    )
    await pipeline.start()
    await bus.publish(topics.received("web"), make_envelope())
    assert await bus.drain(5)
    [dead] = await bus.dead_letters(topics.stage_queue("classify"))
    assert "routing table missing" in dead.error and dead.attempts == 3
    broken = False
    await bus.replay(topics.stage_queue("classify"))
    assert await bus.drain(5)
    assert len(stored) == 1
    await bus.close()


async def test_stage_counters_tell_retried_failures_from_final_ones() -> None:
    """A stage failing once, then for good: failed counts every raise, retried all but the last."""
    bus = MemoryBus()
    metrics = Metrics()
    fns = recording_stages([], [])
    failures: dict[str, int] = {}
    good_route = fns["route"]

    async def route(env: Envelope) -> Envelope | None:
        failures[env.text] = failures.get(env.text, 0) + 1
        if env.text == "poison" or failures[env.text] == 1:
            raise RuntimeError("roster unavailable")
        return await good_route(env)

    fns["route"] = route
    pipeline = Pipeline(
        bus, fns, run=STAGE_NAMES, retry=RetryPolicy((0.01, 0.01)), prefetch=2, metrics=metrics
    )
    await pipeline.start()
    await bus.publish(topics.received("web"), make_envelope("flaky"))
    await bus.publish(topics.received("web"), make_envelope("poison"))
    assert await bus.drain(5)

    def value(name: str, stage: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"stage": stage})

    # flaky: 1 failure, retried; poison: 3 failures, the first 2 retried, the last parked.
    assert value("intake_hub_stage_failed_total", "route") == 4
    assert value("intake_hub_stage_retried_total", "route") == 3
    assert value("intake_hub_stage_processed_total", "route") == 1
    assert value("intake_hub_stage_processed_total", "classify") == 5
    assert value("intake_hub_stage_retried_total", "classify") is None
    assert len(await bus.dead_letters(topics.stage_queue("classify"))) == 1
    await bus.close()
