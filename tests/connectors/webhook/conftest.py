"""A running app with the shipped `app` webhook instance, and a signed sender for it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from standardwebhooks.webhooks import Webhook

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage.models import Customer, Ticket, WebIdempotency
from tests.connectors.webhook.kit import OTHER_SECRET, signed
from tests.connectors.webhook.kit import SECRET as APP_SECRET
from tests.web.conftest import Client

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def client(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Client:
    """The whole service with the shipped app.yaml, two secrets configured (a rotation)."""
    directory = tmp_path / "connectors"
    directory.mkdir()
    (directory / "app.yaml").write_text((ROOT / "connectors" / "app.yaml").read_text())
    monkeypatch.setenv("INTAKE_HUB_WEBHOOK_SECRET", f"{APP_SECRET} {OTHER_SECRET}")
    app = create_app(replace(settings, database_url=db_url, connectors_dir=directory))
    client = await aiohttp_client(app)
    return client


def message(customer: str = "u_1001", text: str = "快递三天没动了", **data: Any) -> bytes:
    """A `message.created` body from the app's user `customer`."""
    event = {
        "type": "message.created",
        "data": {"customer": {"id": customer, "name": "李雷"}, "text": text} | data,
    }
    return orjson.dumps(event)


async def send(
    client: Client,
    body: bytes,
    msg_id: str,
    secret: str = APP_SECRET,
    at: float | None = None,
    **headers: str,
) -> ClientResponse:
    """POST `body` to /hooks/app signed as the app does (extra headers override)."""
    sent = signed(body, msg_id, secret, at) | headers
    return await client.post("/hooks/app", data=body, headers=sent)


async def stored() -> tuple[int, int, int]:
    """(tickets, webhook ids claimed, customers) in the database."""
    return (
        await Ticket.all().count(),
        await WebIdempotency.all().count(),
        await Customer.all().count(),
    )


# The app's secret for the events it receives, and the one it signs its messages with.
SECRET = "whsec_" + base64.b64encode(b"app-events-secret-0123456789abcd").decode()
INBOUND = "whsec_" + base64.b64encode(b"app-inbound-secret-0123456789ab").decode()


@dataclass
class FakeApp:
    """An app backend on loopback: verifies and records events, fails on demand, goes down."""

    fail_next: int = 0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where intake-hub posts events."""
        return f"http://127.0.0.1:{self.port}/events"

    @property
    def ids(self) -> list[str]:
        """The webhook ids received with a 2xx, in arrival order."""
        return [i for i, _ in self.received]

    async def start(self) -> None:
        """Listen (again on the same port after `stop`)."""
        app = web.Application()
        app.router.add_post("/events", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Go down: connections are refused until `start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        # A third-party Standard Webhooks implementation: raises unless the signature holds.
        payload = Webhook(SECRET).verify(body, dict(request.headers))
        assert request.headers["content-type"] == "application/json"
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            return web.Response(status=503, text="busy")
        self.received.append((request.headers["webhook-id"], payload))
        return web.Response(status=204)

    def of(self, number: str) -> list[str]:
        """The event types received for one ticket, in order."""
        return [p["type"] for _, p in self.received if p["data"]["ticket"] == number]


@pytest.fixture(name="fake_app")
async def fake_app_fixture() -> AsyncIterator[FakeApp]:
    """A running fake app backend."""
    fake = FakeApp()
    await fake.start()
    yield fake
    await fake.stop()


async def eventually(check: Callable[[], Awaitable[bool]], deadline_s: float = 10.0) -> None:
    """Poll `check` until it holds; fail at the deadline."""
    end = time.monotonic() + deadline_s
    while not await check():
        assert time.monotonic() < end, "condition not met before the deadline"
        await asyncio.sleep(0.02)
