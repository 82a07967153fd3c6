"""The admin API over dead letters, on the in-process bus: list, replay, purge, admin only."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage import agents
from tests.web.conftest import AUTH, Client, post_message, settle

POISON = "POISON-7f3a"
REJECT = f"""
CREATE TRIGGER reject_poison BEFORE INSERT ON message
WHEN NEW.text LIKE '%{POISON}%'
BEGIN SELECT RAISE(ABORT, 'poison rejected by test'); END;
"""


@pytest.fixture
async def sqlite_client(
    settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Client:
    """The whole service on SQLite, whose database refuses any message containing POISON."""
    client = await aiohttp_client(create_app(settings))
    with sqlite3.connect(settings.home / "intake-hub.sqlite3") as db:
        db.executescript(REJECT)
    return client


async def _dead(client: Client, query: str = "") -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/admin/dlq" + query, headers=AUTH)
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def _wait_dead(client: Client, n: int) -> list[dict[str, Any]]:
    for _ in range(100):
        items = await _dead(client)
        if len(items) >= n:
            return items
        await asyncio.sleep(0.05)
    raise AssertionError("nothing was dead-lettered")


async def test_dead_letter_is_listed_replayed_after_the_fix_and_stored(
    sqlite_client: Client, settings: Settings
) -> None:
    """A message the database refuses is parked with its reason; replayed after the fix."""
    client = sqlite_client
    ok = await post_message(client, text="快递一直没到，帮忙查一下")
    bad = await post_message(client, text=f"{POISON} 这个包裹坏了 " + "很长的文字" * 30)
    (item,) = await _wait_dead(client, 1)
    await settle(client)
    assert item["ticket"] == bad["ticket"]
    assert item["stage"] == "classify"
    assert item["attempts"] == 3  # two retries (0.05 s, 0.1 s), then parked
    assert "poison rejected by test" in item["error"]
    assert item["text"].startswith(POISON) and len(item["text"]) == 80
    resp = await client.get(f"/api/v1/tickets/{ok['ticket']}", headers=AUTH)
    assert resp.status == 200  # the rest of the stream went on
    assert await _dead(client, "?stage=persist") == []
    assert len(await _dead(client, "?stage=classify")) == 1

    with sqlite3.connect(settings.home / "intake-hub.sqlite3") as db:
        db.execute("DROP TRIGGER reject_poison")
    resp = await client.post(
        "/api/v1/admin/dlq/replay", json={"ids": [item["id"], "nope"]}, headers=AUTH
    )
    assert resp.status == 200
    assert await resp.json() == {"count": 1, "missing": ["nope"]}
    await settle(client)
    assert await _dead(client) == []
    resp = await client.get(f"/api/v1/tickets/{bad['ticket']}", headers=AUTH)
    assert resp.status == 200


async def test_purge_drops_dead_letters_of_a_stage(sqlite_client: Client) -> None:
    """Purging a stage's dead letters removes them for good; other stages are untouched."""
    client = sqlite_client
    await post_message(client, text=f"{POISON} 一")
    await post_message(client, text=f"{POISON} 二")
    await _wait_dead(client, 2)
    resp = await client.post("/api/v1/admin/dlq/purge", json={"stage": "persist"}, headers=AUTH)
    assert await resp.json() == {"count": 0, "missing": []}
    resp = await client.post("/api/v1/admin/dlq/purge", json={"stage": "classify"}, headers=AUTH)
    assert await resp.json() == {"count": 2, "missing": []}
    assert await _dead(client) == []


async def test_dead_letters_are_for_admins_only(sqlite_client: Client) -> None:
    """No token is 401, an agent's token is 403, on every admin route."""
    token = await agents.add_agent("li", "小李", "agent")
    agent = {"Authorization": f"Bearer {token}"}
    client = sqlite_client
    for method, path in (
        ("GET", "/api/v1/admin/dlq"),
        ("POST", "/api/v1/admin/dlq/replay"),
        ("POST", "/api/v1/admin/dlq/purge"),
    ):
        resp = await client.request(method, path, json={})
        assert resp.status == 401, path
        resp = await client.request(method, path, json={}, headers=agent)
        assert resp.status == 403, path
        assert (await resp.json())["error"] == "forbidden"


async def test_bad_dead_letter_requests_are_422(sqlite_client: Client) -> None:
    """An unknown stage, an empty id list or an unknown field is refused with the field named."""
    client = sqlite_client
    resp = await client.get("/api/v1/admin/dlq?stage=shipping", headers=AUTH)
    assert resp.status == 422
    for body in ({"stage": "shipping"}, {"ids": []}, {"everything": True}):
        resp = await client.post("/api/v1/admin/dlq/replay", json=body, headers=AUTH)
        assert resp.status == 422, body


async def test_openapi_documents_the_admin_routes(sqlite_client: Client) -> None:
    """The OpenAPI document lists the three admin routes with their 403."""
    doc = await (await sqlite_client.get("/api/openapi.json")).json()
    for path in ("/api/v1/admin/dlq", "/api/v1/admin/dlq/replay", "/api/v1/admin/dlq/purge"):
        (operation,) = doc["paths"][path].values()
        assert "403" in operation["responses"]


async def test_dead_letters_on_a_gateway_without_its_broker_are_503(
    settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A gateway whose broker is away answers the admin API 503 with Retry-After, not 500."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = replace(settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{port}/")
    client = await aiohttp_client(create_app(gateway, run=()))
    resp = await client.get("/api/v1/admin/dlq", headers=AUTH)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    assert (await resp.json())["error"] == "bus_unavailable"
