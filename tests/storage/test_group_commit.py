"""Group commit: a burst of writes shares transactions, and each caller gets its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from intake_hub.storage.group import GroupCommit
from intake_hub.storage.sql import Sql


async def test_a_burst_shares_transactions_and_results_stay_in_order(database: str) -> None:
    """Fifty concurrent calls run in at most two transactions; each gets its own answer."""
    batches: list[int] = []

    async def double(sql: Sql, items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        await sql.fetch("SELECT 1")
        return [2 * i for i in items]

    group: GroupCommit[int, int] = GroupCommit(double)
    assert await asyncio.gather(*(group(i) for i in range(50))) == [2 * i for i in range(50)]
    assert sum(batches) == 50 and len(batches) <= 2


async def test_a_failing_batch_fails_its_callers_only(database: str) -> None:
    """Every caller of a batch that raises gets the error; the next batch runs normally."""
    calls = 0

    async def flaky(sql: Sql, items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return list(items)

    group: GroupCommit[str, str] = GroupCommit(flaky)
    first = await asyncio.gather(group("a"), group("b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in first)
    assert await group("c") == "c"
