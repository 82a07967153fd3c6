"""The WeChat channel's kit for the connector contract suite: a safe-mode account that sends."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from tortoise.transactions import in_transaction

from intake_hub.app import OUTBOUND
from intake_hub.connectors.wechat.normalize import parse, to_envelope
from intake_hub.envelope import Envelope
from intake_hub.testing import FakeWeChatApi
from intake_hub.tickets.outbound import Delivery
from tests.connectors.contract import Client, Kit, Probe
from tests.connectors.wechat.conftest import AES_KEY, APP_ID, OPENID, sent_eventually, signed

PAYLOADS = Path(__file__).parent / "payloads"


class _Signed(Probe):
    """A probe whose path gets a query signed for token AAAAA when the request is made.

    A signed timestamp is only accepted for a few minutes, longer ago than the suite may
    have been collected, and a nonce only once with one body: so both are made afresh.
    """

    @property  # type: ignore[override]
    def path(self) -> str:
        """The path with a fresh timestamp, nonce and signature (and its own extras)."""
        query = urlencode(signed(token="AAAAA"))
        return f"{self._path}{'&' if '?' in self._path else '?'}{query}"

    @path.setter
    def path(self, value: str) -> None:
        object.__setattr__(self, "_path", value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# The instance file names the fake API's address, so the fake needs a port known now.
PORT = _free_port()


class _FakeOnPort(FakeWeChatApi):
    """The fake WeChat API on the port the instance file names."""

    async def start(self) -> str:
        """Serve on `PORT`; returns the base URL."""
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", PORT).start()
        self.base = f"http://127.0.0.1:{PORT}"
        return self.base


def golden() -> Iterator[tuple[Envelope, Mapping[str, Any]]]:
    """Each recorded push that makes a ticket, read as safe mode reads it, beside its fields."""
    for path in sorted(PAYLOADS.glob("*.xml")):
        expected = orjson.loads(path.with_suffix(".expected.json").read_bytes())
        if "no_ticket" in expected:
            continue
        env = to_envelope(
            parse(path.read_bytes()),
            env_id=uuid.uuid4(),
            ticket="0K3M7Q2X9HT",
            received_at=datetime.now(UTC),
            instance="shop",
            menu={"LOGISTICS": "查询物流"},
            identity="verified",
        )
        assert isinstance(env, Envelope)
        yield env, expected


async def deliver_twice(client: Client) -> int:
    """Offer one agent reply twice to the account's way out; how many sends WeChat saw."""
    now = datetime.now(UTC)
    reply = Delivery(
        key=f"agent:{uuid.uuid4()}",
        ticket_id=uuid.uuid4(),
        number="0K3M7Q2X9HT",
        source="wechat/wechat",
        customer_key=OPENID,
        text="您的退货已受理",
        ticket_updated_at=now,
        at=now,
    )
    fake = _FakeOnPort()
    await fake.start()
    try:
        outbound = client.app[OUTBOUND]["wechat/wechat"]
        for _ in range(2):
            async with in_transaction():
                await outbound.enqueue(reply)
        await sent_eventually(fake)
        # Later passes of the dispatcher must find nothing more to send.
        await asyncio.sleep(0.3)
        return len(fake.sends)
    finally:
        await fake.close()


KIT = Kit(
    type="wechat",
    yaml=(
        "type: wechat\nname: wechat\ntoken: AAAAA\n"
        f"app_id: {APP_ID}\napp_secret: s3cret\naes_key: {AES_KEY}\n"
        f"api_base: http://127.0.0.1:{PORT}\noutbound_poll_s: 0.05\n"
    ),
    identity="verified",
    probes=(
        _Signed("GET", "/hooks/wechat?echostr=4375120948345356249", 200),
        Probe("GET", "/hooks/wechat?echostr=1", 403),
        Probe("POST", "/hooks/wechat", 403),
        # Safe mode: a signed but unencrypted push is refused.
        _Signed("POST", "/hooks/wechat", 400),
    ),
    golden=golden,
    deliver_twice=deliver_twice,
)
