"""Events out to an app backend: the sender of one instance's `app_event` outbox.

Each pass takes every ticket's oldest undecided event that is due (so a ticket's events
arrive in the order they happened: a later one waits until the earlier is delivered or
dead), leases it, and posts it signed the Standard Webhooks way. A 2xx delivers it;
anything else retries after an exponential delay with full jitter until the horizon,
then the event is dead. Delivery is at least once: a process that dies after the app
answered 2xx but before recording it sends the same `webhook-id` again when the lease
runs out, and the app dedupes on that id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp
import orjson
from pydantic import AnyHttpUrl

from intake_hub.connectors.webhook.signing import secret_bytes, sign
from intake_hub.periodic import cancel
from intake_hub.storage import app_events
from intake_hub.storage.app_events import Due

log = logging.getLogger(__name__)

# 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, then every 3 h until the horizon (upper bounds:
# each wait is drawn uniformly below its bound, so a fleet of retries spreads out).
BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 3600.0, 10800.0)
HORIZON_S = 24 * 3600.0
# Longer than any request may take: a lease that runs out means its holder is gone.
LEASE_S = 60.0
TIMEOUT_S = 15.0
BATCH = 50


class EventsConfig(Protocol):
    """What the sender needs of a `WebhookConfig`."""

    @property
    def name(self) -> str:
        """The instance name: events of tickets from `webhook/<name>` are sent."""
        ...

    @property
    def events_url(self) -> AnyHttpUrl | None:
        """The app's endpoint, or None to send nothing."""
        ...

    @property
    def events_secret(self) -> str:
        """One or more `whsec_` secrets (space-separated): each signs every event."""
        ...


class Breaker:
    """A circuit breaker for one endpoint: after `threshold` failures in a row it opens.

    While open nothing is sent; after the cool-down one probe goes (half-open): a success
    closes it, a failure opens it again for twice as long (up to `max_cooldown_s`).
    """

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 600.0,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.failures = 0
        self.cooldown_s = cooldown_s
        self.open_until: float | None = None
        self.probing = False

    @property
    def state(self) -> str:
        """closed, open or half_open."""
        if self.open_until is None:
            return "closed"
        return "half_open" if time.monotonic() >= self.open_until else "open"

    def permits(self) -> int | None:
        """How many sends may start now: None for any, 0 while open, 1 for the probe."""
        state = self.state
        if state == "closed":
            return None
        if state == "open" or self.probing:
            return 0
        return 1

    def started(self, count: int) -> None:
        """`count` sends started; in half-open that is the probe."""
        if count and self.state == "half_open":
            self.probing = True

    def success(self) -> None:
        """A 2xx: the endpoint is back."""
        self.failures, self.open_until, self.probing = 0, None, False
        self.cooldown_s = self.base_cooldown_s

    def failure(self) -> None:
        """A failed send: count it, open after too many, re-open after a failed probe."""
        self.failures += 1
        if self.probing or self.state == "half_open":
            self.probing = False
            self.cooldown_s = min(self.cooldown_s * 2, self.max_cooldown_s)
            self.open_until = time.monotonic() + self.cooldown_s
        elif self.open_until is None and self.failures >= self.threshold:
            self.open_until = time.monotonic() + self.cooldown_s


class EventDispatcher:
    """Sends one webhook instance's events to its app; started and stopped by the connector.

    Runs in every process that mounts the instance; the lease makes one of them send each
    attempt. Knows the database and the app's endpoint, not the bus.
    """

    def __init__(
        self,
        config: EventsConfig,
        *,
        poll_s: float = 1.0,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        horizon_s: float = HORIZON_S,
        lease_s: float = LEASE_S,
        timeout_s: float = TIMEOUT_S,
        breaker: Breaker | None = None,
    ) -> None:
        self.config = config
        self.source = f"{app_events.PREFIX}{config.name}"
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.horizon = timedelta(seconds=horizon_s)
        self.lease = timedelta(seconds=lease_s)
        self.timeout_s = timeout_s
        self.breaker = breaker or Breaker()
        self._keys = tuple(secret_bytes(s) for s in config.events_secret.split())
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether there is an endpoint to send to (else events wait in the outbox)."""
        return self.config.events_url is not None and bool(self._keys)

    async def start(self) -> None:
        """Open the HTTP session and begin polling (the database is open by now)."""
        if not self.enabled:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._task = asyncio.create_task(self._loop(), name=f"app-events/{self.config.name}")

    async def stop(self) -> None:
        """Stop polling and close the session; an event in flight is sent again later."""
        if self._task is not None:
            await cancel(self._task)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("%s: event pass failed", self.source)
                sent = 0
            # Something went out: a ticket's next event may be due at once.
            if not sent:
                await asyncio.sleep(self.poll_s)

    async def run_once(self) -> int:
        """One pass: lease and send each ticket's next due event; returns how many were 2xx."""
        permits = self.breaker.permits()
        if permits == 0:
            return 0
        now = datetime.now(UTC)
        rows = await app_events.due(self.source, now, permits or BATCH)
        jobs = [j for r in rows if (j := await app_events.lease(r, now + self.lease)) is not None]
        self.breaker.started(len(jobs))
        return sum(await asyncio.gather(*(self._send(j) for j in jobs)))

    async def _send(self, job: Due) -> int:
        assert self._session is not None and self.config.events_url is not None
        body = orjson.dumps(job.payload)
        stamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": job.webhook_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": " ".join(sign(k, job.webhook_id, stamp, body) for k in self._keys),
        }
        started = time.monotonic()
        code: int | None = None
        try:
            async with self._session.post(
                str(self.config.events_url), data=body, headers=headers, allow_redirects=False
            ) as resp:
                code = resp.status
                error = None if 200 <= code < 300 else f"HTTP {code}: {(await resp.text())[:120]}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        latency_ms = int((time.monotonic() - started) * 1000)
        now = datetime.now(UTC)
        if error is None:
            self.breaker.success()
            await app_events.finish(job, now, code=code, error=None, latency_ms=latency_ms)
            return 1
        self.breaker.failure()
        retry_at = self._retry_at(job, now)
        if retry_at is None:
            log.warning("%s: %s dead after %d attempts", self.source, job.webhook_id, job.attempts)
        await app_events.finish(
            job, now, code=code, error=error, latency_ms=latency_ms, retry_at=retry_at
        )
        return 0

    def _retry_at(self, job: Due, now: datetime) -> datetime | None:
        """When to try again (full jitter under the step's bound), or None past the horizon."""
        bound = self.backoff_s[min(job.attempts, len(self.backoff_s)) - 1]
        at = now + timedelta(seconds=random.uniform(0, bound))
        return at if at <= job.since + self.horizon else None
