"""How far behind the pipeline is: the deepest stage queue, sampled a few times a second.

Admission control compares it with a channel's limit, so a flood of one channel is
refused at the door before it fills the queues every channel's messages share.
"""

from __future__ import annotations

from collections.abc import Sequence

from intake_hub.bus import Bus
from intake_hub.periodic import Periodic

SAMPLE_EVERY_S = 0.1
# On RabbitMQ each sample is a round trip per queue and lane: fewer, the queues are deep.
BROKER_SAMPLE_EVERY_S = 0.5


class Backlog:
    """The largest depth among the stage queues at the last sample (0 until the first)."""

    def __init__(self, bus: Bus, queues: Sequence[str]) -> None:
        self._bus = bus
        self._queues = list(queues)
        self.depth = 0
        every_s = BROKER_SAMPLE_EVERY_S if bus.durable else SAMPLE_EVERY_S
        self._sampler = Periodic("backlog sampling", every_s, self._sample)

    def __call__(self) -> int:
        """Messages waiting in the deepest stage queue."""
        return self.depth

    def start(self) -> None:
        """Begin sampling (the topology is declared by now)."""
        self._sampler.start()

    async def stop(self) -> None:
        """Stop sampling."""
        await self._sampler.stop()

    async def _sample(self) -> None:
        try:
            depths = [await self._bus.depth(q) for q in self._queues]
        except Exception:  # any failure: the depth is unknown, and unknown refuses nobody
            # The broker is away (a gateway spooling): intake is the spool's to bound then.
            self.depth = 0
            return
        self.depth = max(depths, default=0)
