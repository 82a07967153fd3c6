"""Both directions through the real service: an app posts a message, hears its ticket back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from tests.connectors.webhook.conftest import ROOT, SECRET, FakeApp, eventually, message, send
from tests.connectors.webhook.kit import SECRET as INBOUND
from tests.web.conftest import Client


async def test_a_message_from_the_app_comes_back_as_signed_events(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
    fake_app: FakeApp,
) -> None:
    """The shipped instance, its events URL set: ticket.created then the auto-reply arrive."""
    directory = tmp_path / "connectors"
    directory.mkdir()
    (directory / "app.yaml").write_text((ROOT / "connectors" / "app.yaml").read_text())
    monkeypatch.setenv("INTAKE_HUB_WEBHOOK_SECRET", INBOUND)
    monkeypatch.setenv("INTAKE_HUB_APP_EVENTS_URL", fake_app.url)
    monkeypatch.setenv("INTAKE_HUB_APP_EVENTS_SECRET", SECRET)
    client = await aiohttp_client(
        create_app(replace(settings, database_url=db_url, connectors_dir=directory))
    )
    resp = await send(client, message(text="订单 4102938475610 的快递三天没动了"), "msg_round_1")
    assert resp.status == 202, await resp.text()
    number = (await resp.json())["ticket"]

    async def both() -> bool:
        return fake_app.of(number)[:2] == ["ticket.created", "ticket.replied"]

    await eventually(both, deadline_s=20)
    created = next(p for _, p in fake_app.received if p["type"] == "ticket.created")
    assert created["data"]["ticket"] == number
