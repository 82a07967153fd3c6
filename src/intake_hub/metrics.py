"""Prometheus metrics of one service instance (its own registry, no globals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

SAMPLE_TIMEOUT_S = 2.0
# A scraper polling many times a second (a benchmark, a dashboard) must not turn into a
# stream of passive declares on the broker: a sample this fresh is served as it is.
SAMPLE_MIN_INTERVAL_S = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms named in the public contract, and per-stage ones."""

    def __init__(self, sample_interval: float = SAMPLE_MIN_INTERVAL_S) -> None:
        self.registry = CollectorRegistry()
        self._sample_interval = sample_interval
        self._sampled_at: float | None = None
        r = self.registry
        self.received = Counter(
            "intake_hub_received_total", "Messages accepted at intake", ["channel"], registry=r
        )
        self.stored = Counter(
            "intake_hub_stored_total", "Messages stored as tickets", ["channel"], registry=r
        )
        self.rejected = Counter(
            "intake_hub_rejected_total",
            "Requests refused at intake",
            ["channel", "reason"],
            registry=r,
        )
        self.intake_latency = Histogram(
            "intake_hub_intake_latency_seconds",
            "Time from request to 2xx answer at intake",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "intake_hub_received_to_stored_seconds",
            "Time from intake to the ticket committed in the database",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_processed = Counter(
            "intake_hub_stage_processed_total", "Envelopes a stage finished", ["stage"], registry=r
        )
        self.stage_failed = Counter(
            "intake_hub_stage_failed_total", "Envelopes a stage raised on", ["stage"], registry=r
        )
        self.stage_retried = Counter(
            "intake_hub_stage_retried_total",
            "Envelopes a stage raised on that the bus will deliver again (the rest are parked)",
            ["stage"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "intake_hub_queue_depth",
            "Messages waiting in a stage queue and its retry tiers, read when scraped",
            ["queue"],
            registry=r,
        )
        self.spool_depth = Gauge(
            "intake_hub_spool_depth",
            "Messages on disk in the local spool: accepted and not yet stored (serve), or "
            "held while the broker is unreachable (gateway)",
            registry=r,
        )

    async def sample_queues(
        self, depth: Callable[[str], Awaitable[int]], queues: Iterable[str]
    ) -> None:
        """Read each queue's depth from the bus; a queue it cannot count now is left out.

        All queues share one deadline, so a scrape never waits long on a broker in trouble;
        within `sample_interval` of the last sample the gauges are left as they are.
        """
        now = asyncio.get_running_loop().time()
        if self._sampled_at is not None and now - self._sampled_at < self._sample_interval:
            return
        self._sampled_at = now
        deadline = now + SAMPLE_TIMEOUT_S
        for queue in queues:
            try:
                async with asyncio.timeout_at(deadline):
                    count = await depth(queue)
            except Exception as exc:  # broker away or queue not declared yet: no stale value
                log.debug("queue depth of %s unavailable: %r", queue, exc)
                with contextlib.suppress(KeyError):
                    self.queue_depth.remove(queue)
                continue
            self.queue_depth.labels(queue).set(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def merge_expositions(texts: Iterable[bytes]) -> bytes:
    """Several processes' Prometheus texts as one: samples with the same name and labels
    are added up (counters, histogram buckets, queue depths), `*_created` keeps the oldest.
    """
    families: dict[str, tuple[list[str], dict[str, float]]] = {}
    current: dict[str, float] | None = None
    for text in texts:
        for line in text.decode().splitlines():
            if line.startswith("# HELP "):
                name = line.split(" ", 3)[2]
                if name not in families:
                    families[name] = ([], {})
                headers, current = families[name]
                if not headers:
                    headers.append(line)
            elif line.startswith("# TYPE ") and current is not None:
                headers = families[line.split(" ", 3)[2]][0]
                if len(headers) == 1:
                    headers.append(line)
            elif line and not line.startswith("#") and current is not None:
                key, _, value = line.rpartition(" ")
                if key in current and key.split("{", 1)[0].endswith("_created"):
                    current[key] = min(current[key], float(value))
                else:
                    current[key] = current.get(key, 0.0) + float(value)
    out = []
    for headers, samples in families.values():
        out += headers
        out += [f"{key} {value!r}" for key, value in samples.items()]
    return ("\n".join(out) + "\n").encode()
