"""The WeChat connector under the connector contract: made from the core, started, stopped,
and its way out (the outbox) queued in the caller's transaction and sent once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from intake_hub.connectors.base import ConnectorConfig
from intake_hub.connectors.web.connector import WebConfig
from intake_hub.connectors.wechat import outbox
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.connector import WeChatConnector
from intake_hub.storage.models import WeChatDelivery, WeChatOutbound
from intake_hub.testing import FakeWeChatApi
from intake_hub.tickets.outbound import Delivery
from tests.connectors.wechat.conftest import AES_KEY, OPENID, FakeCore, sent_eventually, shop

SECRET = "app-secret-0123456789"


def connector(config: ConnectorConfig) -> WeChatConnector:
    """The connector as the app makes it: from its config and the core it is lent."""
    return WeChatConnector.create(config, FakeCore().core())


def delivery(key: str = "agent:1", source: str = "wechat/shop") -> Delivery:
    """An agent's reply to the test customer of the `shop` account."""
    now = datetime.now(UTC)
    return Delivery(
        key=key,
        ticket_id=uuid.uuid4(),
        number="0K3M7Q2X9HT",
        source=source,
        customer_key=OPENID,
        text="您的退货已受理",
        ticket_updated_at=now,
        at=now,
    )


def test_created_from_its_config_and_the_core() -> None:
    """`create` gives the instance its source, routes and, in plaintext mode, claimed customers."""
    wechat = connector(shop())
    assert (WeChatConnector.type, WeChatConnector.Config) == ("wechat", WeChatConfig)
    assert isinstance(wechat.config, ConnectorConfig) and wechat.config.enabled
    assert wechat.source == "wechat/shop" and wechat.identity == "claimed"
    assert [(r.method, r.path) for r in wechat.routes()] == [
        ("GET", "/hooks/shop"),
        ("POST", "/hooks/shop"),
    ]
    assert wechat.openapi() is None


def test_safe_mode_vouches_for_its_customers() -> None:
    """With an AES key WeChat's signature covers the body: the openids are verified."""
    assert connector(shop(aes_key=AES_KEY)).identity == "verified"


def test_another_channels_config_is_refused() -> None:
    """A config of another type is a wiring mistake, said at once."""
    with pytest.raises(TypeError, match="WeChatConfig"):
        connector(WebConfig())


def test_without_a_token_the_instance_is_not_enabled() -> None:
    """An empty token (unset variables) leaves the instance to be skipped."""
    assert not WeChatConfig().enabled


def test_an_account_without_app_secret_has_no_way_out() -> None:
    """No app secret, no customer-service API: replies reach the customer by the status page."""
    assert connector(shop()).outbound is None
    outbound = connector(shop(app_secret=SECRET)).outbound
    assert outbound is not None and outbound.channel == "wechat"


async def test_start_prunes_and_stop_ends_it(database: None) -> None:
    """Started, the connector forgets two-day-old delivery rows at once; stop is clean twice."""
    await WeChatDelivery.create(
        instance="shop",
        msg_key="ancient",
        envelope_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        answer="",
        created_at=datetime.now(UTC) - timedelta(days=2),
    )
    wechat = connector(shop())
    await wechat.start()
    try:
        for _ in range(100):
            if not await WeChatDelivery.exists():
                break
            await asyncio.sleep(0.02)
        assert not await WeChatDelivery.exists()
    finally:
        await wechat.stop()
    await wechat.stop()


async def test_a_delivery_offered_twice_is_queued_and_sent_once(
    database: None, fake: FakeWeChatApi
) -> None:
    """Two offers of one key, each in its own transaction: one row, one send once started."""
    wechat = connector(shop(app_secret=SECRET, api_base=fake.base, outbound_poll_s=0.05))
    outbound = wechat.outbound
    assert outbound is not None
    assert not await outbound.queued("agent:1")
    for _ in range(2):
        async with in_transaction():
            await outbound.enqueue(delivery())
    assert await outbound.queued("agent:1")
    assert await WeChatOutbound.filter(key="agent:1").count() == 1
    await wechat.start()
    try:
        assert await sent_eventually(fake) == ["您的退货已受理"]
        await asyncio.sleep(0.2)
    finally:
        await wechat.stop()
    assert len(fake.sends) == 1 and fake.sends[0]["touser"] == OPENID
    row = await outbox.get("agent:1")
    assert row is not None and (row.status, row.instance) == ("sent", "shop")
    await asyncio.sleep(0.1)
    assert len(fake.sends) == 1


async def test_a_delivery_rolled_back_with_its_transaction_is_not_queued(database: None) -> None:
    """The outbox row commits with the caller's transaction, or not at all."""
    outbound = connector(shop(app_secret=SECRET)).outbound
    assert outbound is not None
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await outbound.enqueue(delivery())
            assert await outbound.queued("agent:1")
            raise RuntimeError("the reply failed to store")
    assert not await outbound.queued("agent:1")


async def test_another_accounts_delivery_is_refused(database: None) -> None:
    """An openid means something on its own account only: no row for another source."""
    outbound = connector(shop(app_secret=SECRET)).outbound
    assert outbound is not None
    with pytest.raises(ValueError, match="wechat/outlet"):
        await outbound.enqueue(delivery(source="wechat/outlet"))
    assert not await outbound.queued("agent:1")
