"""The delivery book's records: of racing deliveries of one push exactly one is first."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from intake_hub.connectors.wechat.deliveries import Deliveries


async def test_racing_deliveries_of_one_message_have_one_first(database: None) -> None:
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
async def test_distinct_messages_are_each_first(database: None, count: int) -> None:
    """Different MsgIds claimed together are all first, each with its own envelope."""
    book = Deliveries()
    ids = [uuid.uuid4() for _ in range(count)]
    claims = await asyncio.gather(
        *(book.claim("shop", f"msg-{i}", e, "0K3M7Q2X9HT") for i, e in enumerate(ids))
    )
    assert [c.first for c in claims] == [True] * count
    assert [c.envelope_id for c in claims] == ids
