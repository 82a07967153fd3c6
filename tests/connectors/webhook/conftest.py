"""A running app with the shipped `app` webhook instance, and a signed sender for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage.models import Customer, Ticket, WebIdempotency
from tests.connectors.webhook.kit import OTHER_SECRET, SECRET, signed
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
    monkeypatch.setenv("INTAKE_HUB_WEBHOOK_SECRET", f"{SECRET} {OTHER_SECRET}")
    app = create_app(replace(settings, database_url=db_url, connectors_dir=directory))
    client = await aiohttp_client(app)
    # The PostgreSQL database is the module's, emptied per test of all but these rows.
    await WebIdempotency.filter(instance="webhook:app").delete()
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
    secret: str = SECRET,
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
