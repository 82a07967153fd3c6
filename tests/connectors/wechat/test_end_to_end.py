"""WeChat through the whole service: shipped config, real app, bus, stages and database."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from intake_hub import ticketno
from intake_hub.app import create_app
from intake_hub.config import Settings
from tests.connectors.wechat.conftest import (
    OPENID,
    WECHAT_ENV,
    Client,
    encrypt,
    open_reply,
    post,
    text_push,
)
from tests.web.conftest import AUTH, settle


async def test_wechat_message_becomes_a_classified_ticket_and_the_ack_is_the_reply(
    wechat_client: Client,
) -> None:
    """A customer's WeChat complaint is stored and classified, and its ack shows in the chat."""
    msg_id = 24530287612009999
    for _ in range(2):
        resp = await post(wechat_client, "/hooks/wechat", *encrypt(text_push(msg_id)))
        assert resp.status == 200
        reply = open_reply(await resp.text())
        assert reply["ToUserName"] == OPENID
    await settle(wechat_client)

    resp = await wechat_client.get("/api/v1/tickets?channel=wechat", headers=AUTH)
    [item] = (await resp.json())["items"]
    resp = await wechat_client.get(f"/api/v1/tickets/{item['number']}", headers=AUTH)
    ticket = await resp.json()
    assert ticket["channel"] == "wechat"
    assert ticket["category"] == "return_exchange"
    inbound, ack = ticket["messages"]
    assert inbound["text"] == "衣服开线了，想退货"
    assert ack["direction"] == "out" and ack["text"] == reply["Content"]
    assert ticketno.pretty(item["number"]) in reply["Content"]


async def test_unconfigured_wechat_is_skipped_and_the_service_starts(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    """Without WeChat variables the service runs as before and says once why WeChat is off."""
    for name in (*WECHAT_ENV, "INTAKE_HUB_WECHAT_APP_SECRET", "INTAKE_HUB_WECHAT_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="intake_hub.app"):
        client = await aiohttp_client(create_app(settings))
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/hooks/wechat")).status == 404
    skipped = [r for r in caplog.records if "wechat/wechat" in r.getMessage()]
    assert len(skipped) == 1 and "not mounted" in skipped[0].getMessage()
