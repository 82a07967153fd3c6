"""Outbound WeChat: the shared access_token and customer-service sends, on a fake server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from intake_hub.connectors.wechat import outbox
from intake_hub.connectors.wechat.api import AccessTokens, CustomerService
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.outbound import Dispatcher
from intake_hub.storage.models import WeChatOutbound, WeChatToken
from intake_hub.testing import FakeWeChatApi
from tests.connectors.wechat.conftest import APP_ID, OPENID, TOKEN

SECRET = "app-secret-0123456789"
FAST = (0.01, 0.01, 0.01)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the test."""
    async with aiohttp.ClientSession() as s:
        yield s


def tokens(session: aiohttp.ClientSession, fake: FakeWeChatApi) -> AccessTokens:
    """A fresh token reader, as another process would have."""
    return AccessTokens(session, fake.base, APP_ID, SECRET)


@pytest.fixture
async def dispatcher(database: None, fake: FakeWeChatApi) -> AsyncIterator[Dispatcher]:
    """An opened (not polling) dispatcher for the test account."""
    config = WeChatConfig(
        name="shop", token=TOKEN, app_id=APP_ID, app_secret=SECRET, api_base=fake.base
    )
    d = Dispatcher(config, delays=FAST)
    await d.open()
    yield d
    await d.stop()


async def queue(key: str = "agent:1", text: str = "您的退货已受理", hours_ago: float = 0.0) -> None:
    """Queue one message to the test customer."""
    now = datetime.now(UTC)
    await outbox.enqueue(
        key, "shop", OPENID, "0K3M7Q2X9HT", text, now - timedelta(hours=hours_ago), now
    )


async def test_two_clients_fetch_the_token_once(
    database: None, fake: FakeWeChatApi, session: aiohttp.ClientSession
) -> None:
    """Two processes asking at once for a token: one fetch, both get the same token."""
    fake.token_delay = 0.2
    a, b = tokens(session, fake), tokens(session, fake)
    got = await asyncio.gather(a.get(), b.get(), a.get(), b.get())
    assert len(fake.fetches) == 1
    assert set(got) == {"TOKEN-1"}
    assert await a.get() == "TOKEN-1" and len(fake.fetches) == 1


async def test_token_near_expiry_is_fetched_anew(
    database: None, fake: FakeWeChatApi, session: aiohttp.ClientSession
) -> None:
    """A stored token with under five minutes left is replaced before it runs out."""
    soon = datetime.now(UTC) + timedelta(minutes=2)
    await WeChatToken.create(app_id=APP_ID, token="OLD", expires_at=soon)
    assert await tokens(session, fake).get() == "TOKEN-1"
    row = await WeChatToken.get(app_id=APP_ID)
    assert row.token == "TOKEN-1" and row.lease_owner is None
    assert fake.fetches[0]["force_refresh"] is False


async def test_a_fresh_stored_token_is_read_not_fetched(
    database: None, fake: FakeWeChatApi, session: aiohttp.ClientSession
) -> None:
    """A token another process stored is used as it is."""
    later = datetime.now(UTC) + timedelta(hours=1)
    await WeChatToken.create(app_id=APP_ID, token="SHARED", expires_at=later)
    assert await tokens(session, fake).get() == "SHARED"
    assert fake.fetches == []


async def test_rejected_token_one_refresh_then_one_retry(
    database: None, fake: FakeWeChatApi, session: aiohttp.ClientSession
) -> None:
    """Two clients both hear 40001: one forced refresh between them, each message sent once."""
    a, b = tokens(session, fake), tokens(session, fake)
    await a.get()
    await b.get()
    fake.expire_tokens()
    sa, sb = (CustomerService(session, t, fake.base, delays=FAST) for t in (a, b))
    results = await asyncio.gather(sa.send_text(OPENID, "一"), sb.send_text(OPENID, "二"))
    assert all(r.sent for r in results)
    assert len(fake.fetches) == 2 and fake.fetches[1]["force_refresh"] is True
    assert sorted(fake.texts) == ["一", "二"]


async def test_42001_then_still_rejected_is_not_a_loop(
    database: None, fake: FakeWeChatApi, session: aiohttp.ClientSession
) -> None:
    """After the one refresh, a second rejection is final: no stampede of fetches."""
    fake.fail_next(42001, times=2)
    result = await CustomerService(session, tokens(session, fake), fake.base).send_text(OPENID, "x")
    assert not result.sent and result.code == 42001
    assert fake.attempts == 2 and len(fake.fetches) == 2


@pytest.mark.parametrize("code", [45015, 45047])
async def test_final_errors_are_recorded_not_retried(
    dispatcher: Dispatcher, fake: FakeWeChatApi, code: int
) -> None:
    """Window closed (45015) or quota used (45047): one call, recorded, never tried again."""
    await queue()
    fake.fail_next(code)
    assert await dispatcher.run_once() == 0
    assert await dispatcher.run_once() == 0
    row = await WeChatOutbound.get(key="agent:1")
    assert (row.status, row.error_code, row.attempts) == ("failed", code, 1)
    assert fake.attempts == 1 and fake.sends == []


async def test_server_errors_are_retried_then_sent(
    dispatcher: Dispatcher, fake: FakeWeChatApi
) -> None:
    """Two 502s, then success: sent once, after three calls."""
    await queue()
    fake.fail_next(502, times=2)
    assert await dispatcher.run_once() == 1
    assert fake.attempts == 3 and fake.texts == ["您的退货已受理"]
    assert (await WeChatOutbound.get(key="agent:1")).status == "sent"


async def test_outage_longer_than_the_backoff_goes_back_to_the_queue(
    dispatcher: Dispatcher, fake: FakeWeChatApi
) -> None:
    """When every retry fails the message waits for a later pass, not lost, not sent twice."""
    await queue()
    fake.fail_next(503, times=4)
    assert await dispatcher.run_once() == 0
    row = await WeChatOutbound.get(key="agent:1")
    assert (row.status, row.error_code) == ("pending", 503)
    assert row.next_at > datetime.now(UTC)


async def test_same_key_and_two_dispatchers_send_once(
    dispatcher: Dispatcher, fake: FakeWeChatApi
) -> None:
    """A message queued twice under one key, and two workers racing for it: one send."""
    await queue()
    await queue()
    other = Dispatcher(dispatcher.config, delays=FAST)
    await other.open()
    try:
        sent = await asyncio.gather(dispatcher.run_once(), other.run_once())
    finally:
        await other.stop()
    assert sum(sent) == 1 and fake.texts == ["您的退货已受理"]


async def test_outside_the_48h_window_nothing_is_sent(
    dispatcher: Dispatcher, fake: FakeWeChatApi
) -> None:
    """The customer last wrote 49 hours ago: no call is made, and the row says why."""
    await queue(hours_ago=49)
    assert await dispatcher.run_once() == 0
    row = await WeChatOutbound.get(key="agent:1")
    assert row.status == "skipped" and row.reason is not None and "window" in row.reason
    assert fake.attempts == 0


async def test_no_token_puts_the_message_back_unsent(database: None, fake: FakeWeChatApi) -> None:
    """WeChat refuses the credentials: nothing was sent, so the message waits for later."""
    config = WeChatConfig(
        name="shop", token=TOKEN, app_id=APP_ID, app_secret="", api_base=fake.base
    )
    d = Dispatcher(config, delays=FAST)
    await d.open()
    try:
        await queue()
        assert await d.run_once() == 0
    finally:
        await d.stop()
    row = await WeChatOutbound.get(key="agent:1")
    assert row.status == "pending" and row.reason is not None and "token" in row.reason
    assert fake.attempts == 0


async def test_a_send_cut_off_mid_flight_is_recorded_not_repeated(
    dispatcher: Dispatcher, fake: FakeWeChatApi
) -> None:
    """A claim left by a dead worker is marked failed (delivery unknown) and never resent."""
    await queue()
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    await WeChatOutbound.filter(key="agent:1").update(status="sending", updated_at=long_ago)
    assert await dispatcher.run_once() == 0
    row = await WeChatOutbound.get(key="agent:1")
    assert row.status == "failed" and row.reason is not None and "unknown" in row.reason
    assert fake.attempts == 0
