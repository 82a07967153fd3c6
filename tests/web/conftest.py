"""A running app on embedded defaults, and helpers to talk to it like a customer or an agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from intake_hub.app import SERVICES, create_app
from intake_hub.config import Settings
from tests.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(
    settings: Settings, db_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Client:
    """A test client on the whole service: HTTP, bus, every stage, on SQLite and PostgreSQL."""
    return await aiohttp_client(create_app(replace(settings, database_url=db_url)))


async def settle(client: Client) -> None:
    """Wait until every accepted message went through the pipeline."""
    assert await client.app[SERVICES].bus.drain(10)


async def post_message(client: Client, **fields: Any) -> dict[str, Any]:
    """Send a web message as a customer and return the 202 body."""
    body = {
        "name": "王女士",
        "contact": "wang@example.com",
        "text": "尺码不对，想换大一码，订单号 4102938475610",
    } | fields
    resp = await client.post("/api/v1/web/messages", json=body)
    assert resp.status == 202, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data
