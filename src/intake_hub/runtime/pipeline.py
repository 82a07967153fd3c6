"""Runs stages on a bus: consecutive stages of one process share a handler, no broker hop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence

from intake_hub import topics
from intake_hub.bus import ATTEMPT, Bus, Consumer, QueueSpec, RetryPolicy, Unroutable
from intake_hub.envelope import Envelope
from intake_hub.metrics import Metrics
from intake_hub.stages import STAGES, StageFn, StageSpec

log = logging.getLogger(__name__)

# Told of each envelope whose last local stage finished (stored, or dropped by a stage).
Settled = Callable[[Envelope], None]


def topology(retry: RetryPolicy) -> list[QueueSpec]:
    """Every stage queue, derived from `STAGES`."""
    return [QueueSpec(s.queue, s.consumes, retry) for s in STAGES]


def local_groups(run: Collection[str]) -> list[list[StageSpec]]:
    """Split the stages this process runs into runs of consecutive stages."""
    unknown = set(run) - {s.name for s in STAGES}
    if unknown:
        raise ValueError(f"unknown stage(s): {', '.join(sorted(unknown))}")
    groups: list[list[StageSpec]] = []
    previous = False
    for spec in STAGES:
        if spec.name in run:
            if previous:
                groups[-1].append(spec)
            else:
                groups.append([spec])
        previous = spec.name in run
    return groups


class Pipeline:
    """Consumes each local group's first queue and runs the group's stages in order.

    The input is acked only after the group's output is safely published, so a crash
    anywhere means redelivery from the group's first stage: harmless, since every stage
    is idempotent and persistence is keyed by the envelope id.
    """

    def __init__(
        self,
        bus: Bus,
        functions: Mapping[str, StageFn],
        *,
        run: Collection[str],
        retry: RetryPolicy,
        prefetch: int,
        metrics: Metrics,
    ) -> None:
        self._bus = bus
        self._functions = functions
        self._groups = local_groups(run)
        self._retry = retry
        self._prefetch = prefetch
        self._metrics = metrics
        self._consumers: list[Consumer] = []
        # The embedded journal's hook: a message's row may go once persistence committed it.
        self.settled: Settled | None = None

    @property
    def queues(self) -> list[str]:
        """The name of every stage queue, whichever stages run here."""
        return [spec.name for spec in topology(self._retry)]

    async def declare(self) -> None:
        """Declare every stage queue, whichever stages run here."""
        for spec in topology(self._retry):
            await self._bus.declare(spec)

    async def start(self) -> None:
        """Declare the topology and start consuming."""
        await self.declare()
        for group in self._groups:
            consumer = await self._bus.consume(
                group[0].queue, self._handler(group), prefetch=self._prefetch
            )
            self._consumers.append(consumer)

    async def stop(self) -> None:
        """Stop consuming; unfinished messages go back to their queues."""
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers.clear()

    def _handler(self, group: Sequence[StageSpec]) -> _GroupHandler:
        last = group[-1]
        forward = last is not STAGES[-1]
        return _GroupHandler(self, group, last.produces if forward else None)


class _GroupHandler:
    def __init__(self, pipeline: Pipeline, group: Sequence[StageSpec], out: str | None) -> None:
        self._bus = pipeline._bus
        self._metrics = pipeline._metrics
        self._steps = [(spec, pipeline._functions[spec.name]) for spec in group]
        self._max_attempts = pipeline._retry.max_attempts
        self._out = out
        self._pipeline = pipeline

    async def __call__(self, env: Envelope) -> None:
        for spec, fn in self._steps:
            try:
                result = await fn(env)
            except Exception:
                self._metrics.stage_failed.labels(spec.name).inc()
                if ATTEMPT.get() < self._max_attempts:
                    self._metrics.stage_retried.labels(spec.name).inc()
                raise
            self._metrics.stage_processed.labels(spec.name).inc()
            if result is None:
                self._settle(env)
                return
            env = result
            if spec.replies and env.reply_to and env.reply is not None:
                await self._send_reply(env)
        if self._out is not None:
            await self._bus.publish(self._out, env)
        else:
            self._settle(env)

    def _settle(self, env: Envelope) -> None:
        settled = self._pipeline.settled
        if settled is not None:
            settled(env)

    async def _send_reply(self, env: Envelope) -> None:
        assert env.reply_to is not None
        try:
            await self._bus.publish(topics.reply_topic(env.reply_to), env)
        except Unroutable:
            # The waiting process is gone; its connector delivers the reply later instead.
            log.info("nobody waits for the reply to %s any more", env.id)
