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
    metrics = Metrics()

    await metrics.sample_queues(bus.depth, ["q.one"])
    assert metrics.registry.get_sample_value("intake_hub_queue_depth", {"queue": "q.one"}) == 2

    async def unreachable(queue: str) -> int:
        raise ConnectionError("broker away")

    await metrics.sample_queues(unreachable, ["q.one"])
    assert metrics.registry.get_sample_value("intake_hub_queue_depth", {"queue": "q.one"}) is None
    await bus.close()
