"""Graceful shutdown: SIGTERM loses nothing that was answered 202."""

from __future__ import annotations

import asyncio
import signal
import sqlite3

import aiohttp

from tests.served.conftest import Served


async def _post_many(url: str, n: int) -> list[str]:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> str | None:
            body = {"name": f"客户{i}", "contact": f"c{i}@example.com", "text": f"第{i}个包裹没到"}
            async with session.post(url + "/api/v1/web/messages", json=body) as resp:
                return (await resp.json())["ticket"] if resp.status == 202 else None

        got = await asyncio.gather(*(one(i) for i in range(n)))
    return [t for t in got if t]


def test_sigterm_right_after_a_burst_stores_every_accepted_message(served: Served) -> None:
    """Every message answered 202 is in the database after SIGTERM, exactly once."""
    accepted = asyncio.run(_post_many(served.url, 400))
    assert len(accepted) == 400
    assert served.stop(signal.SIGTERM) == 0
    with sqlite3.connect(served.database) as db:
        inbound = db.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()[0]
        tickets = {r[0] for r in db.execute("SELECT number FROM ticket")}
    assert inbound == 400
    assert tickets == set(accepted)
