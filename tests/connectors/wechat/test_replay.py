"""Replay: a signed query works only while its timestamp is fresh, and only with its own body."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import xmltodict  # type: ignore[import-untyped]
from aiohttp import web

from intake_hub.connectors.wechat import outbox
from intake_hub.connectors.wechat.book import NONCE_MARGIN_S, Book
from intake_hub.connectors.wechat.connector import WeChatConnector
from intake_hub.connectors.wechat.deliveries import Deliveries
from intake_hub.connectors.wechat.nonces import Nonces
from intake_hub.metrics import Metrics
from intake_hub.storage.models import WeChatNonce
from tests.connectors.wechat.conftest import (
    AES_KEY,
    Client,
    FakeCore,
    Serve,
    encrypt,
    open_reply,
    post,
    shop,
    signed,
    stored,
    text_push,
)

PATH = "/hooks/shop"


def msg_id() -> int:
    """A fresh MsgId, so tests never share one."""
    return random.randrange(10**16, 10**17)


def reply_text(xml: str) -> str:
    """The passive reply's text in plaintext mode."""
    content: str = xmltodict.parse(xml)["xml"]["Content"]
    return content


@pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])
@pytest.mark.parametrize("offset", [-301, 301, -3600 * 24 * 365], ids=["old", "future", "year"])
async def test_a_timestamp_outside_the_window_is_refused(
    serve: Serve, safe_mode: bool, offset: int
) -> None:
    """A correctly signed push stamped beyond five minutes either way: a bare 403, no ticket."""
    client, core = await serve(aes_key=AES_KEY if safe_mode else "")
    push, ts = text_push(msg_id()), int(time.time()) + offset
    body, query = encrypt(push, ts=ts) if safe_mode else (push, signed(ts=ts))
    resp = await post(client, PATH, body, query)
    assert resp.status == 403
    assert "stale" not in await resp.text()
    assert core.seen == [] and await stored() == 0


@pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])
async def test_a_timestamp_inside_the_window_passes(serve: Serve, safe_mode: bool) -> None:
    """Clocks a few minutes apart are tolerated, either way."""
    client, core = await serve(aes_key=AES_KEY if safe_mode else "")
    for offset in (-290, 290):
        push, ts = text_push(msg_id()), int(time.time()) + offset
        body, query = encrypt(push, ts=ts) if safe_mode else (push, signed(ts=ts))
        assert (await post(client, PATH, body, query)).status == 200
    assert len(core.seen) == 2


async def test_the_window_is_set_per_account(serve: Serve) -> None:
    """`max_clock_skew_s` narrows the window for one account."""
    client, core = await serve(max_clock_skew_s=60)
    resp = await post(client, PATH, text_push(msg_id()), signed(ts=int(time.time()) - 120))
    assert resp.status == 403 and core.seen == []


@pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])
async def test_the_url_check_refuses_a_stale_timestamp(serve: Serve, safe_mode: bool) -> None:
    """A captured URL check stops working once its timestamp is out of the window."""
    client, _ = await serve(aes_key=AES_KEY if safe_mode else "")
    old = signed(ts=int(time.time()) - 600, echostr="4375120948345356249")
    resp = await client.get(PATH, params=old)
    assert resp.status == 403 and "4375120948345356249" not in await resp.text()
    fresh = signed(echostr="4375120948345356249")
    assert await (await client.get(PATH, params=fresh)).text() == "4375120948345356249"
    # WeChat asking again with the same query gets the same echo.
    assert await (await client.get(PATH, params=fresh)).text() == "4375120948345356249"


async def test_a_url_check_query_cannot_sign_a_push(serve: Serve) -> None:
    """The URL check's signed query, replayed as a plaintext push, is refused."""
    client, core = await serve()
    query = signed(echostr="4375120948345356249")
    assert (await client.get(PATH, params=query)).status == 200
    resp = await post(client, PATH, text_push(msg_id()), query)
    assert resp.status == 403 and core.seen == [] and await stored() == 0


async def test_a_replayed_query_with_another_body_is_refused(serve: Serve) -> None:
    """A captured signed URL carrying a forged body: 403, and no second ticket."""
    client, core = await serve()
    query = signed()
    first = await post(client, PATH, text_push(msg_id(), "衣服开线了"), query)
    assert first.status == 200
    forged = text_push(msg_id(), "退款打到这个账户", openid="oForgedSender0000000000000")
    resp = await post(client, PATH, forged, query)
    assert resp.status == 403
    assert await resp.text() == "403: Forbidden"
    assert len(core.seen) == 1 and await stored() == 1


async def test_wechats_retry_with_the_same_query_gets_the_first_answer(serve: Serve) -> None:
    """A retry (same query, same body) is not a replay: the same passive reply, one ticket."""
    client, core = await serve()
    push, query = text_push(msg_id(), "快递三天没动了"), signed()
    first = await post(client, PATH, push, query)
    core.reply_text = "a second emit would say this"
    again = await post(client, PATH, push, query)
    assert first.status == again.status == 200
    assert reply_text(await first.text()) == reply_text(await again.text())
    assert len(core.seen) == 1 and await stored() == 1


async def test_safe_mode_retry_with_the_same_query_gets_the_first_answer(serve: Serve) -> None:
    """In safe mode the same sealed push again is WeChat's retry: the same reply, one ticket."""
    client, core = await serve(aes_key=AES_KEY)
    body, query = encrypt(text_push(msg_id()))
    first = await post(client, PATH, body, query)
    again = await post(client, PATH, body, query)
    assert first.status == again.status == 200
    assert open_reply(await first.text())["Content"] == open_reply(await again.text())["Content"]
    assert len(core.seen) == 1 and await WeChatNonce.all().count() == 0


async def test_two_processes_share_the_nonces(
    database: None, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """Two connectors on one database: a replay refused by the other, a retry answered."""
    clients: list[Client] = []
    cores: list[FakeCore] = []
    for _ in range(2):
        core = FakeCore()
        connector = WeChatConnector.create(shop(), core.core())
        app = web.Application()
        app.router.add_routes(connector.routes())
        clients.append(await aiohttp_client(app))
        cores.append(core)
    push, query = text_push(msg_id()), signed()
    first = await post(clients[0], PATH, push, query)
    assert first.status == 200
    forged = await post(clients[1], PATH, text_push(msg_id(), "forged"), query)
    assert forged.status == 403
    retry = await post(clients[1], PATH, push, query)
    assert retry.status == 200
    assert reply_text(await retry.text()) == reply_text(await first.text())
    assert [len(c.seen) for c in cores] == [1, 0] and await stored() == 1


async def test_refusals_are_counted_and_logged_once_a_minute(
    database: None,
    aiohttp_client: Callable[..., Awaitable[Client]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every replay counts in the refusal metric; the log says so once, with the count."""
    core, metrics = FakeCore(), Metrics()
    connector = WeChatConnector.create(shop(), replace(core.core(), metrics=metrics))
    app = web.Application()
    app.router.add_routes(connector.routes())
    client = await aiohttp_client(app)
    query = signed()
    assert (await post(client, PATH, text_push(msg_id()), query)).status == 200
    with caplog.at_level(logging.INFO, logger="intake_hub.connectors.wechat"):
        for _ in range(3):
            assert (await post(client, PATH, text_push(msg_id()), query)).status == 403
        stale = signed(ts=int(time.time()) - 900)
        assert (await post(client, PATH, text_push(msg_id()), stale)).status == 403
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    sample = metrics.registry.get_sample_value
    assert sample("intake_hub_rejected_total", {"channel": "wechat", "reason": "replay"}) == 3
    assert sample("intake_hub_rejected_total", {"channel": "wechat", "reason": "stale"}) == 1


@pytest.mark.parametrize(("aes_key", "warned"), [("", True), (AES_KEY, False)])
async def test_plaintext_mode_warns_at_start(
    database: None, caplog: pytest.LogCaptureFixture, aes_key: str, warned: bool
) -> None:
    """An account without an AES key says at start that safe mode is recommended."""
    connector = WeChatConnector.create(shop(aes_key=aes_key), FakeCore().core())
    with caplog.at_level(logging.WARNING, logger="intake_hub.connectors.wechat"):
        await connector.start()
        await connector.stop()
    said = [r.getMessage() for r in caplog.records if "safe mode is recommended" in r.getMessage()]
    assert bool(said) is warned


async def _nonce(instance: str, nonce: str, age_s: int) -> None:
    await WeChatNonce.create(
        instance=instance,
        nonce=nonce,
        timestamp=int(time.time()) - age_s,
        body_hash="0" * 64,
        seen_at=datetime.now(UTC),
    )


async def test_prune_forgets_only_nonces_past_the_window(database: None) -> None:
    """Nonces no request can carry any more go; fresh ones and other accounts' stay."""
    for i in range(5):
        await _nonce("shop", f"old-{i}", 3600)
    await _nonce("shop", "fresh", 10)
    await _nonce("shop", "edge", 300)
    await _nonce("other", "old", 3600)
    book = Book("shop", 3.0, FakeCore().request, Deliveries(), outbox, Nonces(), 300)
    assert NONCE_MARGIN_S < 3600 - 300
    assert await book.prune_nonces() == 5
    left = await WeChatNonce.all().values_list("instance", "nonce")
    assert sorted(left) == [("other", "old"), ("shop", "edge"), ("shop", "fresh")]
    assert await Nonces().prune("shop", int(time.time()), batch=1) == 2
    assert await book.prune_nonces() == 0
