"""Delivery rows are forgotten once WeChat can no longer retry them; nothing else goes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.connectors.wechat import book
from intake_hub.connectors.wechat.deliveries import Deliveries
from intake_hub.storage.models import Message, WeChatDelivery
from tests.connectors.wechat.conftest import (
    WECHAT_ENV,
    Client,
    encrypt,
    open_reply,
    post,
    text_push,
)
from tests.web.conftest import settle


async def _row(instance: str, key: str, age: timedelta) -> None:
    await WeChatDelivery.create(
        instance=instance,
        msg_key=key,
        envelope_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        answer="",
        created_at=datetime.now(UTC) - age,
    )


async def test_prune_forgets_only_old_rows_of_its_account(database: None) -> None:
    """Rows older than the cut-off go, in batches; newer ones and other accounts' stay."""
    for i in range(5):
        await _row("shop", f"old-{i}", timedelta(days=2))
    await _row("shop", "new", timedelta(minutes=1))
    await _row("other", "old", timedelta(days=2))
    cutoff, deliveries = datetime.now(UTC) - timedelta(days=1), Deliveries()
    assert await deliveries.prune("shop", cutoff, batch=2) == 5
    left = await WeChatDelivery.all().order_by("instance").values_list("instance", "msg_key")
    assert sorted(left) == [("other", "old"), ("shop", "new")]
    assert await deliveries.prune("shop", cutoff) == 0


async def test_the_running_service_prunes_and_still_dedupes_retries(
    settings: Settings,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    """The service drops a two-day-old row on its own; a fresh push's retry is still one."""
    for name, value in WECHAT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(book, "PRUNE_EVERY_S", 0.05)
    client = await aiohttp_client(create_app(replace(settings, database_url=db_url)))
    await WeChatDelivery.filter(instance="wechat").delete()
    await _row("wechat", "ancient", timedelta(days=2))
    push = text_push(24530287612007777)
    first = await post(client, "/hooks/wechat", *encrypt(push))
    for _ in range(100):
        if not await WeChatDelivery.filter(msg_key="ancient").exists():
            break
        await asyncio.sleep(0.05)
    again = await post(client, "/hooks/wechat", *encrypt(push))
    await settle(client)
    assert open_reply(await first.text())["Content"] == open_reply(await again.text())["Content"]
    assert await Message.filter(channel="wechat", direction="in").count() == 1
    keys = await WeChatDelivery.filter(instance="wechat").values_list("msg_key", flat=True)
    assert keys == ["24530287612007777"]
