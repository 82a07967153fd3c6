"""The slow-reply path through the real app: `success` now, one customer-service send later."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from intake_hub.app import SERVICES, create_app
from intake_hub.config import Settings
from intake_hub.envelope import Envelope
from intake_hub.runtime.stageset import StageSet
from intake_hub.storage.models import Event, WeChatOutbound
from intake_hub.testing import FakeWeChatApi
from tests.connectors.wechat.conftest import (
    OPENID,
    Client,
    encrypt,
    post,
    sending_connectors,
    sent_eventually,
    text_push,
)
from tests.web.conftest import AUTH, settle

SLOW_S = 0.3


@pytest.fixture
async def slow_app(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    fake: FakeWeChatApi,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> tuple[Client, list[Envelope]]:
    """The whole service with a responder slower than the reply budget; envelopes it saw."""
    connectors = sending_connectors(tmp_path, fake, "reply_budget_s: 0.05\n")
    seen: list[Envelope] = []
    respond = StageSet.respond

    async def slow_respond(self: StageSet, env: Envelope) -> Envelope:
        seen.append(env)
        await asyncio.sleep(SLOW_S)
        return await respond(self, env)

    monkeypatch.setattr(StageSet, "respond", slow_respond)
    app = create_app(replace(settings, database_url=db_url, connectors_dir=connectors))
    return await aiohttp_client(app), seen


async def test_slow_reply_answers_success_then_sends_the_ack_once(
    slow_app: tuple[Client, list[Envelope]], fake: FakeWeChatApi
) -> None:
    """Budget missed: `success`, then one send of the stored ack, despite retries and redelivery."""
    client, seen = slow_app
    push = text_push(24530287612001234)
    resp = await post(client, "/hooks/wechat", *encrypt(push))
    assert resp.status == 200 and await resp.text() == "success"
    await settle(client)
    await sent_eventually(fake)
    assert len(fake.sends) == 1
    [send] = fake.sends
    assert send["touser"] == OPENID and send["msgtype"] == "text"

    resp = await client.get("/api/v1/tickets?channel=wechat", headers=AUTH)
    [item] = (await resp.json())["items"]
    ticket = await (await client.get(f"/api/v1/tickets/{item['number']}", headers=AUTH)).json()
    ack = [m for m in ticket["messages"] if m["direction"] == "out"]
    assert [m["text"] for m in ack] == fake.texts

    # WeChat retries the push, and the bus redelivers the same envelope.
    resp = await post(client, "/hooks/wechat", *encrypt(push))
    assert await resp.text() == "success"
    await client.app[SERVICES].intake.emit(seen[0])
    await settle(client)
    await asyncio.sleep(0.3)
    assert len(fake.sends) == 1 and len(fake.fetches) == 1
    row = await WeChatOutbound.get(envelope_id=seen[0].id)
    assert row.status == "sent" and row.attempts == 1
    assert await Event.filter(kind="wechat_sent").count() == 1
