"""Admission control: while the pipeline is stuck, a web flood waits outside, WeChat gets in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from tests.connectors.wechat.conftest import TOKEN, post, signed, text_push
from tests.web.conftest import AUTH, Client, settle

CONNECTORS = {
    "web.yaml": "type: web\nname: web\nlimits:\n  max_backlog: 40\n",
    "wechat.yaml": f"type: wechat\nname: wechat\ntoken: {TOKEN}\n",
}


@pytest.mark.postgres
async def test_web_flood_is_refused_while_the_pipeline_is_stuck(
    settings: Settings,
    pg_url: str,
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    """Tickets locked: the web flood gets 503 + Retry-After, WeChat still answers in time."""
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    for name, text in CONNECTORS.items():
        (connectors / name).write_text(text)
    client = await aiohttp_client(
        create_app(replace(settings, database_url=pg_url, connectors_dir=connectors))
    )
    lock = await asyncpg.connect(pg_url)
    tx = lock.transaction()
    await tx.start()
    await lock.execute("TRUNCATE ticket, customer CASCADE")
    await lock.execute("LOCK TABLE ticket IN ACCESS EXCLUSIVE MODE")
    try:
        statuses: list[int] = []
        retry_after: set[str] = set()
        for wave in range(8):
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/web/messages",
                        json={"name": "赵", "contact": f"1380000{wave:02d}{n:02d}", "text": "在吗"},
                    )
                    for n in range(25)
                )
            )
            statuses += [r.status for r in answers]
            retry_after |= {r.headers["Retry-After"] for r in answers if r.status == 503}
            await asyncio.sleep(0.2)
        accepted = statuses.count(202)
        assert statuses.count(503) > 0 and accepted + statuses.count(503) == len(statuses)
        assert retry_after == {"5"}
        started = time.monotonic()
        resp = await post(client, "/hooks/wechat", text_push(7001, "快递到哪了"), signed())
        assert resp.status == 200
        assert time.monotonic() - started < 5
    finally:
        await tx.rollback()
        await lock.close()
    await settle(client)
    resp = await client.get("/api/v1/tickets?channel=web&limit=200", headers=AUTH)
    assert len((await resp.json())["items"]) == accepted
