"""Group commit: concurrent calls share one transaction, so a burst costs one commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from intake_hub.storage import db
from intake_hub.storage.sql import Sql, transaction

T = TypeVar("T")
R = TypeVar("R")

# Runs one batch inside its transaction; returns one result per item, in order.
Batch = Callable[[Sql, Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[T, R]):
    """Whatever arrives while one transaction runs goes into the next, as the writer does.

    On SQLite every write transaction takes the one write lock and commits alone; a burst
    of small writes (a WeChat delivery each, an auto-reply count each) then spends its time
    in commits. Here the first caller starts a drain, and callers arriving meanwhile wait
    for the next round, which takes all of them at once.
    """

    def __init__(self, run: Batch[T, R]) -> None:
        self._run = run
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        """Put `item` in the next batch and wait for its result (or the batch's exception)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with transaction(db.connection()) as sql:
                    results = await self._run(sql, [item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
