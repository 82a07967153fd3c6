"""Operations endpoints: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg

from intake_hub.app import create_app
from intake_hub.config import Settings
from tests.conftest import PG_ADMIN
from tests.web.conftest import Client, post_message, settle


async def test_health_and_readiness(client: Client) -> None:
    """A started service is alive and ready, with nothing degraded."""
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json()) == {"status": "ok", "degraded": {}}


async def test_metrics_count_received_and_stored_by_channel(client: Client) -> None:
    """After three messages, /metrics shows three received and three stored on web."""
    for i in range(3):
        await post_message(client, contact=f"m{i}@example.com")
    await settle(client)
    text = await (await client.get("/metrics")).text()
    assert 'intake_hub_received_total{channel="web"} 3.0' in text
    assert 'intake_hub_stored_total{channel="web"} 3.0' in text
    assert "intake_hub_intake_latency_seconds_bucket" in text
    assert 'intake_hub_received_to_stored_seconds_count{channel="web"} 3.0' in text


async def test_openapi_document_describes_the_public_api(client: Client) -> None:
    """The OpenAPI document lists the contract's paths and the request model's fields."""
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/v1/web/messages",
        "/api/v1/tickets",
        "/api/v1/tickets/{number}",
        "/api/v1/tickets/{number}/status",
    ):
        assert path in doc["paths"]
    web_in = doc["components"]["schemas"]["WebMessageIn"]
    assert set(web_in["required"]) == {"name", "contact", "text"}
    assert web_in["additionalProperties"] is False


async def test_readyz_names_the_database_while_it_is_unreachable(
    settings: Settings, pg_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """With PostgreSQL refusing connections /readyz is 503 naming the database, then recovers."""
    client = await aiohttp_client(create_app(replace(settings, database_url=pg_url)))
    name = pg_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert "database" in (await resp.json())["degraded"]
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    for _ in range(50):
        if (await client.get("/readyz")).status == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/readyz")).status == 200
