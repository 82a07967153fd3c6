"""WeChat test kit: genuine signed and encrypted pushes, a stand-in core, a served connector."""

from __future__ import annotations

import asyncio
import functools
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import xmltodict  # type: ignore[import-untyped]
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

from intake_hub.access import Links
from intake_hub.app import create_app
from intake_hub.attachments import FileStore
from intake_hub.config import Settings
from intake_hub.connectors.base import Core
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.connector import WeChatConnector
from intake_hub.connectors.wechat.normalize import signature
from intake_hub.envelope import Envelope, Reply
from intake_hub.metrics import Metrics
from intake_hub.rules import ReplyRules, load_rules
from intake_hub.stages.responder import open_tickets_text
from intake_hub.storage import db
from intake_hub.storage.models import WeChatDelivery, WeChatNonce, WeChatOutbound, WeChatToken
from intake_hub.testing import FakeWeChatApi
from intake_hub.ticketno import TicketNumbers
from intake_hub.webguard import ClientAddress

TOKEN = "shopToken2024"
APP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "GFEDCBA9876543210zyxwvutsrqponmlkjihgfedcba"
ACCOUNT = "gh_7f083739789a"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"

Client = TestClient  # type: ignore[type-arg]

RULES = Path(__file__).resolve().parents[3] / "rules"
LINKS = Links("https://help.example.com", b"s" * 32)


def text_push(msg_id: int, content: str = "衣服开线了，想退货", openid: str = OPENID) -> str:
    """A customer's text message as WeChat pushes it."""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_push(
    event: str,
    create_time: int = 1714036504,
    key: str = "",
    openid: str = OPENID,
    union_id: str = "",
) -> str:
    """An event push (no MsgId) from the test customer, or from `openid`."""
    extra = f"<EventKey><![CDATA[{key}]]></EventKey>" if key else ""
    if union_id:
        extra += f"<UnionID><![CDATA[{union_id}]]></UnionID>"
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


def signed(
    token: str = TOKEN, nonce: str | None = None, ts: int | None = None, **extra: str
) -> dict[str, str]:
    """The query WeChat puts on every request: timestamp (now), a fresh nonce, their signature.

    Each call is a new request: a nonce seen before with another body is refused as a replay.
    """
    nonce = str(random.randrange(10**9, 10**10)) if nonce is None else nonce
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "signature": signature(token, stamp, nonce),
        "timestamp": stamp,
        "nonce": nonce,
        **extra,
    }


def encrypt(
    xml: str, key: str = AES_KEY, app_id: str = APP_ID, ts: int | None = None
) -> tuple[str, dict[str, str]]:
    """A safe-mode push made by wechatpy's own encryption: the body and its query."""
    query = signed(ts=ts, encrypt_type="aes")
    sealed = xmltodict.parse(
        WeChatCrypto(TOKEN, key, app_id).encrypt_message(xml, query["nonce"], query["timestamp"])
    )["xml"]
    query["msg_signature"] = sealed["MsgSignature"]
    body = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
    )
    return body, query


def open_reply(text: str, key: str = AES_KEY) -> dict[str, Any]:
    """The passive reply decrypted with wechatpy (checking its signature) and parsed."""
    outer = xmltodict.parse(text)["xml"]
    plain = WeChatCrypto(TOKEN, key, APP_ID).decrypt_message(
        text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    reply: dict[str, Any] = xmltodict.parse(plain)["xml"]
    return reply


@functools.cache
def shipped_replies() -> ReplyRules:
    """The shipped reply wording, read once per run (reading the rules costs 0.2 s, and
    nothing here changes them)."""
    return load_rules(RULES).replies


class FakeCore:
    """Stands in for `Intake.request`: records envelopes, replies after `delay` seconds.

    `core()` lends it to a connector the way the app lends the real one.
    """

    def __init__(self) -> None:
        self.seen: list[Envelope] = []
        self.reply_text = "已收到，工单号 0K3M-7Q2X-9HT"
        self.delay = 0.0
        self.fail = False
        self.fail_once_after: float | None = None

    async def request(self, env: Envelope, budget: float) -> Reply | None:
        """Publish-and-wait as the real intake does, with a settable delay or failure."""
        if self.fail_once_after is not None:
            await asyncio.sleep(self.fail_once_after)
            self.fail_once_after = None
            raise ConnectionError("bus down")
        if self.fail:
            raise ConnectionError("bus down")
        self.seen.append(env)
        if self.delay > budget:
            await asyncio.sleep(budget)
            return None
        await asyncio.sleep(self.delay)
        return Reply(kind="ack", text=self.reply_text)

    async def emit(self, env: Envelope) -> None:
        """Publish without waiting; a WeChat connector never calls it."""
        raise AssertionError("WeChat answers with the reply: it uses request, not emit")

    async def status(self, number: str) -> None:
        """No ticket is known here; a WeChat connector never asks."""
        raise AssertionError("WeChat has no status page")

    async def file(self, number: str, attachment_id: UUID, thumb: bool) -> None:
        """WeChat serves no files to customers."""
        raise AssertionError("WeChat has no status page")

    def core(self) -> Core:
        """The part of the core a connector is lent, with the shipped reply wording."""
        replies = shipped_replies()
        return Core(
            emit=self.emit,
            request=self.request,
            numbers=TicketNumbers(1),
            links=LINKS,
            metrics=Metrics(),
            status=self.status,
            tickets_text=lambda tickets: open_tickets_text(tickets, replies, LINKS, "zh"),
            limits=None,
            client=ClientAddress(),
            backlog=lambda: 0,
            files=FileStore(Path(tempfile.mkdtemp(prefix="wechat-files-"))),
            file=self.file,
        )


async def post(
    client: Client, path: str, body: str | bytes, query: dict[str, str]
) -> ClientResponse:
    """POST a push the way WeChat does."""
    return await client.post(path, data=body, params=query, headers={"Content-Type": "text/xml"})


async def stored() -> int:
    """How many deliveries the dedupe table holds."""
    return await WeChatDelivery.all().count()


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[None]:
    """Empty WeChat tables on each backend, the database open for the test."""
    await db.open_db(db_url)
    await WeChatDelivery.all().delete()
    await WeChatOutbound.all().delete()
    await WeChatToken.all().delete()
    await WeChatNonce.all().delete()
    yield
    await db.close_db()


Serve = Callable[..., Awaitable[tuple[Client, FakeCore]]]


def shop(**changes: Any) -> WeChatConfig:
    """The test account `shop` (plaintext mode unless `aes_key` is given), with changes."""
    values: dict[str, Any] = {"name": "shop", "token": TOKEN, "app_id": APP_ID} | changes
    return WeChatConfig(**values)


@pytest.fixture
def serve(database: None, aiohttp_client: Callable[..., Awaitable[Client]]) -> Serve:
    """A served WeChat connector on a config with the given changes, and its fake core."""

    async def make(**changes: Any) -> tuple[Client, FakeCore]:
        core = FakeCore()
        connector = WeChatConnector.create(shop(**changes), core.core())
        app = web.Application()
        app.router.add_routes(connector.routes())
        return await aiohttp_client(app), core

    return make


WECHAT_ENV = {
    "INTAKE_HUB_WECHAT_TOKEN": TOKEN,
    "INTAKE_HUB_WECHAT_APP_ID": APP_ID,
    "INTAKE_HUB_WECHAT_AES_KEY": AES_KEY,
}


@pytest.fixture
async def wechat_client(
    settings: Settings,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Client:
    """The whole service on the shipped connectors/ files with the WeChat variables set."""
    for name, value in WECHAT_ENV.items():
        monkeypatch.setenv(name, value)
    return await aiohttp_client(create_app(replace(settings, database_url=db_url)))


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatApi]:
    """WeChat's API on loopback."""
    api = FakeWeChatApi()
    await api.start()
    yield api
    await api.close()


def sending_connectors(tmp_path: Path, fake: FakeWeChatApi, extra: str = "") -> Path:
    """A connectors/ dir whose WeChat account may send, to the fake API, polling fast."""
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "wechat.yaml").write_text(
        f"type: wechat\nname: wechat\ntoken: {TOKEN}\napp_id: {APP_ID}\n"
        f"app_secret: s3cret\naes_key: {AES_KEY}\napi_base: {fake.base}\n"
        f"outbound_poll_s: 0.05\n{extra}"
    )
    return connectors


async def sent_eventually(fake: FakeWeChatApi, count: int = 1) -> list[str]:
    """Wait (a few seconds at most) until the fake server received `count` sends; the texts."""
    for _ in range(100):
        if len(fake.sends) >= count:
            break
        await asyncio.sleep(0.05)
    return fake.texts
