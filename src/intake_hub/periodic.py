"""A background job run now and then every so often, until stopped (pruners and the like)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it to end, cancelling again if a cancel was swallowed.

    Python 3.11's `asyncio.wait_for` drops a cancel that arrives as its inner call
    completes, and libraries use it everywhere; the task then simply runs on.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)


class Periodic:
    """Runs `job` at start and every `every_s` seconds; a failing run is logged, not fatal."""

    def __init__(self, name: str, every_s: float, job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.every_s = every_s
        self._job = job
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin: the first run starts at once."""
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel the job and wait until it has stopped."""
        if self._task is not None:
            await cancel(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self.name, self.every_s)
            await asyncio.sleep(self.every_s)
