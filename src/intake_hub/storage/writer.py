"""The persist stage's writer: micro-batched, set-based, idempotent by unique constraints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
from tortoise import Tortoise

from intake_hub.envelope import Envelope
from intake_hub.storage.batch import Batch, LostRace, Saved
from intake_hub.storage.db import CONNECTION, is_unavailable
from intake_hub.storage.sql import transaction

__all__ = ["Saved", "TicketWriter"]

log = logging.getLogger(__name__)

_RETRYABLE = (LostRace, asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

_STREAM_S = 0.05


@dataclass
class _Pending:
    env: Envelope
    future: asyncio.Future[Saved]


class TicketWriter:
    """Stores envelopes as tickets, messages and events, many per transaction."""

    def __init__(
        self,
        *,
        batch_size: int = 256,
        followup_window: float = 7 * 24 * 3600,
        connection: str = CONNECTION,
        attempts: int = 5,
        linger_s: float = 0.002,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.followup_window = followup_window
        self.connection = connection
        self.attempts = attempts
        self.linger_s = linger_s
        self._last_flush = float("-inf")
        self._pending: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None

    async def save(self, env: Envelope) -> Saved:
        """Store one envelope; returns once the batch holding it has committed."""
        future: asyncio.Future[Saved] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(env, future))
        if self._task is None or self._task.done():
            # Started, not awaited: every save issued before the loop next turns joins this batch.
            self._task = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Wait until everything handed to `save` so far is written (or has failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            if len(self._pending) < self.batch_size and loop.time() - self._last_flush < _STREAM_S:
                # In a stream (the last batch just ended) a short wait fills the batch: each
                # batch costs a dozen statements however few envelopes it holds. After a
                # pause nothing waits, so a lone message is stored at once.
                await asyncio.sleep(self.linger_s)
            batch = self._pending[: self.batch_size]
            del self._pending[: len(batch)]
            try:
                results = await self._store([p.env for p in batch])
            except Exception as exc:
                if len(batch) > 1 and not is_unavailable(exc):
                    # One bad envelope must not fail the others of its batch (they would be
                    # retried together and fail together): store them one by one.
                    for p in batch:
                        await self._store_alone(p)
                    continue
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
            else:
                for p, result in zip(batch, results, strict=True):
                    if not p.future.done():
                        p.future.set_result(result)
            finally:
                self._last_flush = loop.time()

    async def _store_alone(self, p: _Pending) -> None:
        try:
            (result,) = await self._store([p.env])
        except Exception as exc:
            if not p.future.done():
                p.future.set_exception(exc)
        else:
            if not p.future.done():
                p.future.set_result(result)

    async def _store(self, envs: Sequence[Envelope]) -> list[Saved]:
        client = Tortoise.get_connection(self.connection)
        for attempt in range(1, self.attempts + 1):
            try:
                async with transaction(client) as sql:
                    # The first pass takes every envelope for new, the usual case, and lets
                    # the unique keys say otherwise; a pass after a clash looks them up.
                    batch = Batch(sql, envs, self.followup_window, assume_new=attempt == 1)
                    return await batch.run()
            except _RETRYABLE:
                # Another writer stored some of these first (or PostgreSQL picked us as
                # the deadlock victim): start over, and the next pass sees its rows.
                if attempt == self.attempts:
                    raise
        raise AssertionError("unreachable")
