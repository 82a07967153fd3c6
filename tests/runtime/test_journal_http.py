"""The embedded journal seen from HTTP: a 202 only for a message on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from intake_hub import topics
from intake_hub.app import SERVICES, create_app
from intake_hub.bus import codec
from intake_hub.config import Settings
from intake_hub.runtime.journal import Journal
from intake_hub.runtime.spool import Spool
from intake_hub.testing import make_envelope

Client = TestClient  # type: ignore[type-arg]


def _journal(client: Client) -> Journal:
    journal = client.app[SERVICES].intake.spooler
    assert isinstance(journal, Journal)
    return journal


def _message(text: str) -> dict[str, Any]:
    return {"name": "王女士", "contact": "wang@example.com", "text": text}


async def test_full_disk_answers_503_never_202(
    settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A web message the disk refuses gets 503 `spool_full` with Retry-After, and is not stored."""
    client = await aiohttp_client(create_app(settings))
    store = _journal(client).store

    def cap(conn: sqlite3.Connection | None) -> None:
        assert conn is not None
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    await store._run(cap, store._conn)
    resp = await client.post("/api/v1/web/messages", json=_message("包裹没到 " * 1000))
    assert resp.status == 503
    assert (await resp.json())["error"] == "spool_full"
    assert int(resp.headers["Retry-After"]) > 0
    assert await client.app[SERVICES].bus.drain(10)
    metrics = await (await client.get("/metrics")).text()
    assert 'intake_hub_received_total{channel="web"}' not in metrics or (
        'intake_hub_received_total{channel="web"} 0.0' in metrics
    )


async def test_accepted_message_leaves_the_journal_once_stored(
    settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A 202 message is stored as a ticket, and the journal is empty after."""
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/api/v1/web/messages", json=_message("尺码不对，想换大一码"))
    assert resp.status == 202
    number = (await resp.json())["ticket"]
    assert await client.app[SERVICES].bus.drain(10)
    status = await client.get(f"/api/v1/tickets/{number}", headers=_admin(settings))
    assert status.status == 200
    store = _journal(client).store
    async with asyncio.timeout(10):
        while store.depth:
            await asyncio.sleep(0.01)


def _admin(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token}"}


async def test_row_left_after_its_message_was_stored_is_not_stored_twice(
    settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A crash between the commit and the row's delete: the restart stores nothing twice."""
    env = make_envelope("退货地址在哪里", customer="li@example.com")
    first = await aiohttp_client(create_app(settings))
    await first.app[SERVICES].intake.emit(env)
    assert await first.app[SERVICES].bus.drain(10)
    path = _journal(first).store.path
    await first.close()
    # What a SIGKILL right after persistence committed leaves: the row, not yet deleted.
    left = Spool(path)
    await left.open()
    await left.append(topics.received(env.channel), codec.encode(env))
    await left.close()

    second = await aiohttp_client(create_app(settings))
    store = _journal(second).store
    assert store.path == path
    async with asyncio.timeout(10):
        while store.depth:
            await asyncio.sleep(0.01)
    metrics = await (await second.get("/metrics?scope=process")).text()
    assert 'intake_hub_stage_processed_total{stage="persist"} 1.0' in metrics
    resp = await second.get(f"/api/v1/tickets/{env.ticket}", headers=_admin(settings))
    assert resp.status == 200
    inbound = [m for m in (await resp.json())["messages"] if m["direction"] == "in"]
    assert [m["text"] for m in inbound] == ["退货地址在哪里"]
