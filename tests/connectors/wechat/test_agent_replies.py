"""Agents' replies and status notices reach the WeChat customer through the customer-service API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage.models import Event, Ticket, WeChatOutbound
from intake_hub.testing import FakeWeChatApi
from intake_hub.ticketno import pretty
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


@pytest.fixture
async def sending_app(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    fake: FakeWeChatApi,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Client:
    """The whole service with an official account that may send (app secret, fake API)."""
    connectors = sending_connectors(tmp_path, fake)
    app = create_app(replace(settings, database_url=db_url, connectors_dir=connectors))
    return await aiohttp_client(app)


async def test_agent_reply_and_resolution_are_sent_once_to_the_customer(
    sending_app: Client, fake: FakeWeChatApi
) -> None:
    """A reply and a resolve on a WeChat ticket: two sends to the openid, never repeated."""
    client = sending_app
    resp = await post(client, "/hooks/wechat", *encrypt(text_push(24530287612009999)))
    assert resp.status == 200
    await settle(client)
    ticket = await Ticket.get(channel="wechat")
    assert (ticket.source, ticket.customer_key) == ("wechat/wechat", OPENID)
    number = ticket.number

    answer = "您好，退货地址已发到您的订单里，收到衣服后 24 小时内退款。"
    replied = await client.post(
        f"/api/v1/tickets/{number}/replies", json={"text": answer}, headers=AUTH
    )
    assert replied.status == 201, await replied.text()
    assert (await replied.json())["delivery"] == "wechat"
    assert await sent_eventually(fake, 1) == [answer]
    assert fake.sends[0]["touser"] == OPENID

    moved = await client.post(
        f"/api/v1/tickets/{number}/status", json={"status": "resolved"}, headers=AUTH
    )
    assert (await moved.json())["notified"] is True
    texts = await sent_eventually(fake, 2)
    assert len(texts) == 2 and pretty(number) in texts[1] and "已解决" in texts[1]

    # Later passes of the dispatcher find nothing more to send.
    await asyncio.sleep(0.3)
    assert len(fake.sends) == 2
    rows = await WeChatOutbound.filter(ticket=number).values_list("status", flat=True)
    assert sorted(rows) == ["sent", "sent"]
    assert await Event.filter(ticket_id=ticket.id, kind="wechat_sent").count() == 2


async def test_a_closed_window_is_recorded_not_sent(
    sending_app: Client, fake: FakeWeChatApi
) -> None:
    """WeChat answers 45015 (48 h window closed): the reply is stored, the failure recorded."""
    client = sending_app
    await post(client, "/hooks/wechat", *encrypt(text_push(24530287612008888)))
    await settle(client)
    number = (await Ticket.get(channel="wechat")).number
    fake.fail_next(45015)
    resp = await client.post(
        f"/api/v1/tickets/{number}/replies", json={"text": "请问还需要帮助吗？"}, headers=AUTH
    )
    assert resp.status == 201
    for _ in range(100):
        row = await WeChatOutbound.get(key__startswith="agent:")
        if row.status not in ("pending", "sending"):
            break
        await asyncio.sleep(0.05)
    assert (row.status, row.error_code) == ("failed", 45015)
    await asyncio.sleep(0.3)
    assert (fake.attempts, fake.sends) == (1, [])
    assert await Event.filter(kind="wechat_not_sent").count() == 1
    detail = await (await client.get(f"/api/v1/tickets/{number}", headers=AUTH)).json()
    assert detail["messages"][-1]["text"] == "请问还需要帮助吗？"
    # The agent sees that this reply never reached the customer, and why.
    delivery = detail["messages"][-1]["delivery"]
    assert (delivery["channel"], delivery["status"]) == ("wechat", "failed")
    assert delivery["reason"]
