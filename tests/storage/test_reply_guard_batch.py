"""The automatic-reply cap holds when many replies are counted in one burst."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from intake_hub.storage.replies import DbReplyGuard


async def test_a_burst_for_many_customers_lets_each_have_exactly_the_cap(database: str) -> None:
    """60 concurrent takes for 4 customers (15 each) allow exactly 3 per customer."""
    guard = DbReplyGuard()
    now = datetime.now(UTC)
    keys = [f"c{i % 4}@example.com" for i in range(60)]
    allowed = await asyncio.gather(
        *(guard.take("web", k, limit=3, window_minutes=10, now=now) for k in keys)
    )
    per_customer = {
        k: sum(a for a, kk in zip(allowed, keys, strict=True) if kk == k) for k in set(keys)
    }
    assert per_customer == {f"c{i}@example.com": 3 for i in range(4)}
    # The first three takes of each customer (in call order) are the ones let through.
    for k in set(keys):
        firsts = [a for a, kk in zip(allowed, keys, strict=True) if kk == k]
        assert firsts[:3] == [True, True, True] and not any(firsts[3:])


async def test_two_guards_share_the_count(database: str) -> None:
    """Two processes' guards (two instances) together never exceed the cap."""
    a, b = DbReplyGuard(), DbReplyGuard()
    now = datetime.now(UTC)
    results = await asyncio.gather(
        *(g.take("wechat", "openid-1", limit=3, window_minutes=10, now=now) for g in (a, b) * 5)
    )
    assert sum(results) == 3
