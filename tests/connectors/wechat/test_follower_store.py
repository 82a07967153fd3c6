"""WeChat followers in the store: union ids join a person's openids, follow state by event time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from intake_hub.connectors.wechat import followers, outbox
from intake_hub.envelope import CustomerRef, Envelope, Labels, Reply, Route
from intake_hub.storage import db
from intake_hub.storage.batch import Batch
from intake_hub.storage.models import Customer, CustomerIdentity, Ticket
from intake_hub.storage.sql import transaction
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import TicketNumbers

UNION = "o6_bmasdasdsad6_22sgVt7hMZOPfL"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
NUMBERS = TicketNumbers(node=901)


def _env(
    text: str, key: str, union: str | None = UNION, received_at: datetime | None = None
) -> Envelope:
    """A safe-mode WeChat message from `key` (verified) as it reaches persist, with `union`."""
    return Envelope(
        id=uuid.uuid4(),
        channel="wechat",
        source="wechat/test",
        external_id=uuid.uuid4().hex,
        ticket=NUMBERS.next(),
        customer=CustomerRef(key=key, name="王女士", union_id=union, identity="verified"),
        text=text,
        received_at=received_at or datetime.now(UTC),
        labels=Labels(category="logistics", priority="normal", tags=("物流延迟",)),
        reply=Reply(kind="ack", text="已收到，我们会尽快处理。"),
        route=Route(team="aftersales", reasons=("category logistics",)),
    )


async def _customer(key: str) -> Any:
    identity = await CustomerIdentity.get(channel="wechat", key=key)
    return identity.customer_id  # type: ignore[attr-defined]


async def test_second_account_with_the_same_union_id_is_the_same_customer(database: None) -> None:
    """A message on the merchant's second account lands with the customer of the first."""
    writer = TicketWriter()
    await writer.save(_env("电饭煲还没发货", "openid-shop-a"))
    await writer.save(_env("发票抬头开错了", "openid-shop-b"))
    assert await _customer("openid-shop-a") == await _customer("openid-shop-b")
    assert await Customer.all().count() == 1
    identity = await CustomerIdentity.get(channel="wechat", key="openid-shop-b")
    assert identity.union_id == UNION


async def test_one_batch_with_both_accounts_makes_one_customer(database: None) -> None:
    """Two new openids of one person in the same batch share one new customer."""
    envs = [_env("电饭煲还没发货", "openid-a"), _env("想开发票", "openid-b")]
    async with transaction(db.connection()) as sql:
        saved = await Batch(sql, envs, 3600).run()
    assert [s.created for s in saved] == [True, False]
    assert await Customer.all().count() == 1
    assert await _customer("openid-a") == await _customer("openid-b")


async def test_an_identity_learns_its_union_id_and_then_links_the_other_account(
    database: None,
) -> None:
    """A customer first seen without UnionID gets it from a later push, and is then found by it."""
    writer = TicketWriter()
    await writer.save(_env("衣服开线了", "openid-a", union=None))
    await writer.save(_env("还有一件也开线了", "openid-a"))
    assert (await CustomerIdentity.get(key="openid-a")).union_id == UNION
    await writer.save(_env("退货地址是哪里", "openid-b"))
    assert await _customer("openid-b") == await _customer("openid-a")
    assert await Customer.all().count() == 1


async def test_follow_joins_the_union_customer_and_the_first_message_uses_it(
    database: None,
) -> None:
    """Following the second account links to the known person; their message adds no customer."""
    writer = TicketWriter()
    await writer.save(_env("电饭煲还没发货", "openid-a"))
    await followers.follow("openid-b", UNION, T0)
    assert await _customer("openid-b") == await _customer("openid-a")
    await writer.save(_env("发货了吗", "openid-b"))
    assert await Customer.all().count() == 1
    tickets = await Ticket.all().values_list("customer_id", flat=True)
    assert set(tickets) == {await _customer("openid-a")}


async def test_a_follow_racing_the_first_message_makes_one_customer(database: None) -> None:
    """A subscribe stored while the customer's first message is written leaves one customer."""
    writer = TicketWriter()
    await asyncio.gather(
        followers.follow("openid-new", None, T0),
        writer.save(_env("在吗", "openid-new", union=None)),
    )
    assert await CustomerIdentity.filter(key="openid-new").count() == 1
    assert await Customer.all().count() == 1
    identity = await CustomerIdentity.get(key="openid-new")
    assert identity.subscribed_at == T0
    ticket = await Ticket.get()
    assert ticket.customer_id == identity.customer_id  # type: ignore[attr-defined]


async def test_unsubscribed_follows_event_time_and_a_later_message(database: None) -> None:
    """Only newer events change the follow state, and a message after the mark lifts it."""
    await followers.unfollow("openid-a", None, T0 + timedelta(seconds=10))
    assert await outbox.unsubscribed("openid-a")
    await followers.follow("openid-a", None, T0)  # older than the unfollow: a late retry
    assert await outbox.unsubscribed("openid-a")
    await followers.follow("openid-a", None, T0 + timedelta(seconds=20))
    assert not await outbox.unsubscribed("openid-a")
    await followers.unfollow("openid-a", None, T0 + timedelta(seconds=30))
    assert await outbox.unsubscribed("openid-a")

    # The re-follow event went missing, but the customer wrote again, so they follow.
    later = _env("我又关注了", "openid-a", union=None, received_at=T0 + timedelta(minutes=5))
    await TicketWriter().save(later)
    assert not await outbox.unsubscribed("openid-a")
    assert not await outbox.unsubscribed("openid-never-seen")
