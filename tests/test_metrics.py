"""Queue depths sampled from the bus when /metrics is scraped."""

from __future__ import annotations

from intake_hub.bus import MemoryBus, QueueSpec
from intake_hub.metrics import Metrics
from intake_hub.testing import make_envelope


async def test_queue_depth_is_sampled_and_dropped_when_the_bus_cannot_count() -> None:
    """A queue the bus counts shows its depth; one it cannot count shows nothing (not stale)."""
    bus = MemoryBus()
    await bus.declare(QueueSpec("q.one", ("t.one",)))
    await bus.publish("t.one", make_envelope())
    await bus.publish("t.one", make_envelope())
    metrics = Metrics(sample_interval=0)

    await metrics.sample_queues(bus.depth, ["q.one"])
    assert metrics.registry.get_sample_value("intake_hub_queue_depth", {"queue": "q.one"}) == 2

    async def unreachable(queue: str) -> int:
        raise ConnectionError("broker away")

    await metrics.sample_queues(unreachable, ["q.one"])
    assert metrics.registry.get_sample_value("intake_hub_queue_depth", {"queue": "q.one"}) is None
    await bus.close()


async def test_a_fresh_sample_is_served_without_asking_the_bus_again() -> None:
    """Scrapes within the sample interval reuse the last depths: one bus query, not one each."""
    asked: list[str] = []

    async def depth(queue: str) -> int:
        asked.append(queue)
        return 7

    metrics = Metrics(sample_interval=60)
    for _ in range(5):
        await metrics.sample_queues(depth, ["q.a", "q.b"])
    assert asked == ["q.a", "q.b"]
    assert metrics.registry.get_sample_value("intake_hub_queue_depth", {"queue": "q.b"}) == 7
