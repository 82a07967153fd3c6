"""Followers through the real app: subscribe makes the customer, unsubscribe stops every send,
the "my tickets" button lists open tickets, and a union id joins one person's openids."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import xmltodict  # type: ignore[import-untyped]

from intake_hub import ticketno
from intake_hub.connectors.wechat import followers, outbox
from intake_hub.connectors.wechat.events import TICKETS_NOT_LISTED
from intake_hub.rules import load_rules
from intake_hub.storage.models import Customer, Ticket, WeChatOutbound
from intake_hub.storage.outboxes import FAILED, SENT, SKIPPED
from intake_hub.testing import FakeWeChatApi
from tests.connectors.wechat.conftest import (
    AES_KEY,
    LINKS,
    OPENID,
    RULES,
    Client,
    Serve,
    encrypt,
    event_push,
    open_reply,
    post,
    signed,
    text_push,
)
from tests.web.conftest import AUTH, settle

PATH = "/hooks/shop"
UNION = "o6_bmasdasdsad6_22sgVt7hMZOPfL"
OTHER_OPENID = "oB9xZt2-second-account-openid"
WELCOME = "感谢关注！直接留言即可联系客服。"
T0 = 1714036504
NUMBERS = ticketno.TicketNumbers(node=900)
STATUS = load_rules(RULES).replies.status
assert STATUS is not None and STATUS.none is not None
NONE_OPEN = STATUS.none.zh


def _at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


async def _serve(serve: Serve) -> tuple[Client, Any]:
    """The connector in safe mode with a welcome and the "my tickets" button."""
    return await serve(aes_key=AES_KEY, welcome=WELCOME, my_tickets_key="MY_TICKETS")


async def _answer(client: Client, path: str, xml: str) -> str:
    """Push `xml` encrypted; the decrypted passive reply's text ("" for `success`)."""
    resp = await post(client, path, *encrypt(xml))
    assert resp.status == 200, await resp.text()
    body = await resp.text()
    if body == "success":
        return ""
    content: str = open_reply(body)["Content"]
    return content


async def _give_tickets(customer_id: Any, count: int, status: str = "received") -> list[str]:
    """Tickets for the customer, updated an hour apart (oldest first); their numbers."""
    base = datetime.now(UTC) - timedelta(days=2)
    made = []
    for i in range(count):
        at = base + timedelta(hours=i)
        number = NUMBERS.next()
        await Ticket.create(
            id=uuid.uuid4(),
            number=number,
            status=status,
            channel="wechat",
            category="logistics" if i % 2 else "refund",
            customer_id=customer_id,
            created_at=at,
            updated_at=at,
        )
        made.append(number)
    return made


async def _customer_of(openid: str) -> Any:
    identity = await followers.identity(openid)
    assert identity is not None
    return identity.customer_id  # type: ignore[attr-defined]


async def test_new_follower_is_a_customer_and_sees_the_welcome(serve: Serve) -> None:
    """Subscribing answers the welcome, makes no ticket and leaves a known customer behind."""
    client, core = await _serve(serve)
    assert await _answer(client, PATH, event_push("subscribe", T0)) == WELCOME
    identity = await followers.identity(OPENID)
    assert identity is not None and identity.unsubscribed_at is None
    assert identity.subscribed_at == _at(T0)
    assert await Customer.filter(id=await _customer_of(OPENID)).exists()
    assert core.seen == [] and await Ticket.all().count() == 0


async def test_unsubscribe_is_marked_and_only_a_newer_subscribe_clears_it(serve: Serve) -> None:
    """Unfollowing marks the customer; WeChat's late retry of the old subscribe does not undo it."""
    client, _ = await _serve(serve)
    await _answer(client, PATH, event_push("subscribe", T0))
    assert await _answer(client, PATH, event_push("unsubscribe", T0 + 10)) == ""
    identity = await followers.identity(OPENID)
    assert identity is not None and identity.unsubscribed_at == _at(T0 + 10)
    assert await outbox.unsubscribed(OPENID)

    await _answer(client, PATH, event_push("subscribe", T0))  # a retry of the first follow
    assert await outbox.unsubscribed(OPENID)

    assert await _answer(client, PATH, event_push("subscribe", T0 + 20)) == WELCOME
    assert not await outbox.unsubscribed(OPENID)
    assert await Customer.all().count() == 1


async def test_unfollow_the_store_cannot_take_is_refused_so_wechat_retries(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database away the unsubscribe is answered 503, and WeChat's retry records it."""
    client, _ = await _serve(serve)
    unfollow = followers.unfollow

    async def broken(*args: Any) -> None:
        raise ConnectionError("database away")

    monkeypatch.setattr(followers, "unfollow", broken)
    push = event_push("unsubscribe", T0 + 10)
    resp = await post(client, PATH, *encrypt(push))
    assert resp.status == 503
    monkeypatch.setattr(followers, "unfollow", unfollow)
    assert await _answer(client, PATH, push) == ""
    assert await outbox.unsubscribed(OPENID)


async def test_my_tickets_lists_the_five_newest_open_tickets(serve: Serve) -> None:
    """The button answers with the five most recently updated open tickets and makes none."""
    client, core = await _serve(serve)
    await _answer(client, PATH, event_push("subscribe", T0))
    customer = await _customer_of(OPENID)
    numbers = await _give_tickets(customer, 7)
    [closed] = await _give_tickets(customer, 1, status="resolved")

    text = await _answer(client, PATH, event_push("CLICK", T0 + 30, key="MY_TICKETS"))
    header, *lines = text.splitlines()
    assert "7 个处理中" in header
    newest = [ticketno.pretty(n) for n in reversed(numbers)][:5]
    assert [line.split("：")[0].lstrip("· ") for line in lines] == newest
    assert ticketno.pretty(closed) not in text
    assert "已受理" in lines[0] and "更新于" in lines[0]
    assert LINKS.status_url(numbers[-1]) in lines[0]
    assert core.seen == [] and await Ticket.all().count() == 8


async def test_my_tickets_without_open_tickets_says_so_kindly(serve: Serve) -> None:
    """A customer with nothing open is told so, and pressing the button opens no ticket."""
    client, core = await _serve(serve)
    text = await _answer(client, PATH, event_push("CLICK", T0, key="MY_TICKETS"))
    assert text == NONE_OPEN
    assert core.seen == [] and await Ticket.all().count() == 0


async def test_union_id_shows_one_persons_tickets_on_a_second_account(serve: Serve) -> None:
    """Following a second account of the merchant joins the customer known by the union id."""
    client, _ = await _serve(serve)
    await _answer(client, PATH, event_push("subscribe", T0, union_id=UNION))
    [number] = await _give_tickets(await _customer_of(OPENID), 1)

    await _answer(
        client, PATH, event_push("subscribe", T0 + 5, openid=OTHER_OPENID, union_id=UNION)
    )
    assert await _customer_of(OTHER_OPENID) == await _customer_of(OPENID)
    click = event_push("CLICK", T0 + 9, key="MY_TICKETS", openid=OTHER_OPENID)
    assert ticketno.pretty(number) in await _answer(client, PATH, click)
    assert await Customer.all().count() == 1


async def _answer_plain(client: Client, path: str, xml: str) -> str:
    """Push `xml` in plaintext mode; the passive reply's text ("" for `success`)."""
    resp = await post(client, path, xml, signed())
    assert resp.status == 200, await resp.text()
    body = await resp.text()
    if body == "success":
        return ""
    content: str = xmltodict.parse(body)["xml"]["Content"]
    return content


async def test_my_tickets_in_plaintext_mode_lists_nothing(serve: Serve) -> None:
    """Unsealed, the openid is only claimed: the button points to the status links instead."""
    client, core = await serve(welcome=WELCOME, my_tickets_key="MY_TICKETS")
    assert await _answer_plain(client, PATH, event_push("subscribe", T0)) == WELCOME
    numbers = await _give_tickets(await _customer_of(OPENID), 2)

    text = await _answer_plain(client, PATH, event_push("CLICK", T0 + 30, key="MY_TICKETS"))
    assert text == TICKETS_NOT_LISTED
    assert not any(n in text or ticketno.pretty(n) in text for n in numbers)
    assert "状态链接" in text
    assert core.seen == [] and await Ticket.all().count() == 2


async def test_plaintext_follow_never_joins_a_union_customer(serve: Serve) -> None:
    """A claimed openid with someone's union id follows alone: no join, no union id learned."""
    (safe, _), (plain, _) = await _serve(serve), await serve(welcome=WELCOME)
    await _answer(safe, PATH, event_push("subscribe", T0, union_id=UNION))
    click = event_push("subscribe", T0 + 5, openid=OTHER_OPENID, union_id=UNION)
    assert await _answer_plain(plain, PATH, click) == WELCOME
    assert await _customer_of(OTHER_OPENID) != await _customer_of(OPENID)
    other = await followers.identity(OTHER_OPENID)
    assert other is not None and other.union_id is None
    assert await Customer.all().count() == 2


@pytest.fixture
def sending(fake: FakeWeChatApi, monkeypatch: pytest.MonkeyPatch) -> FakeWeChatApi:
    """The shipped account with an app secret, sending to the fake API (set before the app)."""
    monkeypatch.setenv("INTAKE_HUB_WECHAT_APP_SECRET", "app-secret-0123456789")
    monkeypatch.setenv("INTAKE_HUB_WECHAT_API_BASE", fake.base)
    return fake


async def _outcome(key: str) -> WeChatOutbound:
    """The outbox row once the dispatcher finished with it (it polls every second)."""
    for _ in range(100):
        row = await outbox.get(key)
        if row is not None and row.status in (SENT, FAILED, SKIPPED):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} was not dispatched")


async def _queue(key: str, text: str) -> None:
    """Queue a customer-service message as an agent's reply would be."""
    now = datetime.now(UTC)
    await outbox.enqueue(key, "wechat", OPENID, "0K3M7Q2X9HT", text, now, now)


async def test_nothing_is_sent_after_unsubscribe_until_the_customer_follows_again(
    sending: FakeWeChatApi, wechat_client: Client
) -> None:
    """After unfollowing, a queued message is skipped unsent; after re-following it goes out."""
    path = "/hooks/wechat"
    await _answer(wechat_client, path, text_push(24530287612004321))
    await settle(wechat_client)
    now = int(time.time())
    assert await _answer(wechat_client, path, event_push("unsubscribe", now + 1)) == ""

    await _queue("agent:1", "您的退款已原路退回")
    row = await _outcome("agent:1")
    assert (row.status, row.reason) == ("skipped", "unsubscribed")
    assert sending.sends == [] and sending.fetches == []

    assert await _answer(wechat_client, path, event_push("subscribe", now + 2))
    await _queue("agent:2", "欢迎回来，您的工单仍在处理")
    assert (await _outcome("agent:2")).status == "sent"
    assert sending.texts == ["欢迎回来，您的工单仍在处理"]


async def test_my_tickets_button_on_the_shipped_account(wechat_client: Client) -> None:
    """The shipped MY_TICKETS button: "none open" first, then the ticket the message made."""
    path = "/hooks/wechat"
    click = event_push("CLICK", T0, key="MY_TICKETS")
    assert await _answer(wechat_client, path, click) == NONE_OPEN

    await _answer(wechat_client, path, text_push(24530287612004322))
    await settle(wechat_client)
    resp = await wechat_client.get("/api/v1/tickets?channel=wechat", headers=AUTH)
    [item] = (await resp.json())["items"]

    text = await _answer(wechat_client, path, event_push("CLICK", T0 + 1, key="MY_TICKETS"))
    assert ticketno.pretty(item["number"]) in text
    assert STATUS.statuses[item["status"]].zh in text
    resp = await wechat_client.get("/api/v1/tickets?channel=wechat", headers=AUTH)
    assert len((await resp.json())["items"]) == 1
