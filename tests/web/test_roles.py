"""What each process role serves over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from intake_hub.app import create_app
from intake_hub.config import Settings
from tests.web.conftest import Client


async def test_worker_serves_operations_endpoints_only(
    settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A worker answers /healthz, /readyz and /metrics, and nothing a customer could use."""
    client = await aiohttp_client(create_app(settings, intake=False))
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status == 200, path
    resp = await client.post("/api/v1/web/messages", json={"name": "a", "contact": "b@c.d"})
    assert resp.status == 404
    for path in ("/", "/api/openapi.json", "/api/v1/tickets", "/api/v1/admin/dlq"):
        assert (await client.get(path)).status == 404, path
