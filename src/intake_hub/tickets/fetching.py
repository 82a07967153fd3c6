"""Files a channel only names (a WeChat media id, an app's URL): fetched after the answer.

Persistence leaves a `pending` attachment row for each. Every process that mounts the
channel's instance runs a `PendingFiles` of it: it polls the due rows, leases each (one
process fetches it), downloads it the connector's way, checks it as an upload is checked
and stores it. A failure that may pass waits with jittered backoff until the file's
lifetime ends; one that cannot gives up with the reason. A lease left by a process that
died runs out on its own, and the row is fetched again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from intake_hub.attachments import AttachmentStore, Refused, StoreUnavailable, check
from intake_hub.periodic import Periodic
from intake_hub.storage import attachments as rows
from intake_hub.storage.attachments import Pending

log = logging.getLogger(__name__)

CONCURRENCY = 4


class Later(Exception):
    """A fetch failed in a way that may pass: try again after a while."""


class Never(Exception):
    """A fetch that can never succeed; str(exc) is the reason kept on the row."""


@dataclass(frozen=True)
class Fetched:
    """A downloaded file, with the name its source gave it if any."""

    data: bytes
    filename: str | None


@dataclass(frozen=True)
class Pacing:
    """How one instance fetches: how often it looks, how it backs off, for how long."""

    poll_s: float
    retry_s: Sequence[float]
    # Longer than one fetch can take, so two processes never hold one row at once.
    hold: timedelta
    # After this long since the message the file is given up ("expired").
    lifetime: timedelta
    max_bytes: int


class PendingFiles(ABC):
    """Polls one instance's pending attachments and stores each file once."""

    # Errors of the connector's own kind that may pass (a token being refreshed ...).
    transient: tuple[type[BaseException], ...] = ()

    def __init__(self, source: str, files: AttachmentStore, pacing: Pacing) -> None:
        self._source = source
        self._files = files
        self.pacing = pacing
        self._poller = Periodic(f"files/{source}", pacing.poll_s, self.run_once)

    @abstractmethod
    async def download(self, p: Pending) -> Fetched:
        """The file a row names; raises Later, Never or Refused (too large) when not."""

    def wanted(self, p: Pending) -> bool:
        """Whether this fetcher is the one for row `p` (its kind of reference)."""
        return True

    @abstractmethod
    async def open(self) -> None:
        """Make what `download` needs (an HTTP session); tests call it and `run_once`."""

    @abstractmethod
    async def close(self) -> None:
        """Release what `open` made."""

    async def start(self) -> None:
        """Open and begin polling (the database is open by now)."""
        await self.open()
        self._poller.start()

    async def stop(self) -> None:
        """Stop polling, handing any fetch in flight back, and close."""
        await self._poller.stop()
        await self.close()

    async def run_once(self) -> int:
        """One pass: fetch every due file of the instance; returns how many were stored."""
        due = [p for p in await rows.due(self._source, datetime.now(UTC)) if self.wanted(p)]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(p: Pending) -> int:
            async with gate:
                return await self._take(p)

        return sum(await asyncio.gather(*(one(p) for p in due)))

    async def _take(self, p: Pending) -> int:
        received = p.received_at if p.received_at.tzinfo else p.received_at.replace(tzinfo=UTC)
        expires = received + self.pacing.lifetime
        if expires < datetime.now(UTC):
            await self._give_up(p, "expired")
            return 0
        if not await rows.lease(p.id, p.attempts, self.pacing.hold):
            return 0
        try:
            return await self._fetch(p, expires)
        except asyncio.CancelledError:
            # Stopped mid-fetch: the next process may take the row at once.
            await rows.retry_at(p.id, datetime.now(UTC), "interrupted")
            raise

    async def _fetch(self, p: Pending, expires: datetime) -> int:
        passing: tuple[type[BaseException], ...] = (
            Later,
            StoreUnavailable,
            aiohttp.ClientError,
            TimeoutError,
            *self.transient,
        )
        try:
            got = await self.download(p)
            # Re-encoding a large photo takes a while: not on the loop that answers customers.
            checked = await asyncio.to_thread(
                check,
                got.data,
                name=p.name or got.filename or p.kind,
                max_bytes=self.pacing.max_bytes,
            )
            digest = await self._files.put(checked.data)
        except Never as exc:
            await self._give_up(p, str(exc))
            return 0
        except Refused as exc:
            await self._give_up(p, f"{exc.reason}: {exc}")
            return 0
        except passing as exc:
            await self._later(p, expires, str(exc) or type(exc).__name__)
            return 0
        await rows.fetched(p.id, digest, checked.name, checked.content_type, len(checked.data))
        log.info("%s: stored %s %s (%d bytes)", self._source, p.kind, p.id, len(checked.data))
        return 1

    async def _give_up(self, p: Pending, error: str) -> None:
        log.warning("%s: %s %s not fetched: %s", self._source, p.kind, p.id, error)
        await rows.gave_up(p.id, error)

    async def _later(self, p: Pending, expires: datetime, error: str) -> None:
        delays = self.pacing.retry_s
        wait = delays[min(p.attempts, len(delays) - 1)] * random.uniform(0.8, 1.2)
        at = datetime.now(UTC) + timedelta(seconds=wait)
        if at > expires:
            await self._give_up(p, f"expired; last: {error}")
            return
        log.info("%s: %s %s failed (%s), again in %.0fs", self._source, p.kind, p.id, error, wait)
        await rows.retry_at(p.id, at, error)
