"""Group commit: a burst of writes shares transactions, and each caller gets its own result."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from intake_hub.storage.group import GroupCommit
from intake_hub.storage.sql import Sql
from intake_hub.storage.wechat import Deliveries


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


async def test_racing_deliveries_of_one_message_have_one_first(database: str) -> None:
    """Twenty deliveries of one MsgId through two processes' books: one first, all agree."""
    books = (Deliveries(), Deliveries())
    ids = [uuid.uuid4() for _ in range(20)]
    claims = await asyncio.gather(
        *(
            books[i % 2].claim("shop", "24530287612001234", e, "0K3M7Q2X9HT")
            for i, e in enumerate(ids)
        )
    )
    firsts = [c for c in claims if c.first]
    assert len(firsts) == 1
    winner = firsts[0].envelope_id
    assert {c.envelope_id for c in claims} == {winner}
    assert all(c.answer is None for c in claims)
    await books[0].record_answer("shop", "24530287612001234", "已收到")
    await books[1].record_answer("shop", "24530287612001234", "不会覆盖")
    late = await books[1].claim("shop", "24530287612001234", uuid.uuid4(), "0K3M7Q2X9HT")
    assert (late.first, late.envelope_id, late.answer) == (False, winner, "已收到")


@pytest.mark.parametrize("count", [1, 30])
async def test_distinct_messages_are_each_first(database: str, count: int) -> None:
    """Different MsgIds claimed together are all first, each with its own envelope."""
    book = Deliveries()
    ids = [uuid.uuid4() for _ in range(count)]
    claims = await asyncio.gather(
        *(book.claim("shop", f"msg-{i}", e, "0K3M7Q2X9HT") for i, e in enumerate(ids))
    )
    assert [c.first for c in claims] == [True] * count
    assert [c.envelope_id for c in claims] == ids
