"""Automatic replies through the whole service: status answers and the per-customer cap."""

from __future__ import annotations

from intake_hub import ticketno
from intake_hub.app import SERVICES
from intake_hub.storage.models import Message, Ticket
from intake_hub.testing import make_envelope
from tests.web.conftest import AUTH, Client, post_message, settle


async def _out_kinds(client: Client, number: str) -> list[str | None]:
    ticket = await (await client.get(f"/api/v1/tickets/{number}", headers=AUTH)).json()
    return [m["kind"] for m in ticket["messages"] if m["direction"] == "out"]


async def test_where_is_my_ticket_through_the_pipeline(client: Client) -> None:
    """A verified customer asking for progress is answered with their ticket's live status."""
    intake = client.app[SERVICES].intake
    first = make_envelope("电饭煲坏了", channel="wechat", customer="openid-status")
    await intake.emit(first)
    await settle(client)
    await Ticket.filter(number=first.ticket).update(status="in_progress")
    asking = make_envelope("请问我的工单进度？", channel="wechat", customer="openid-status")
    await intake.emit(asking)
    await settle(client)
    replies = await Message.filter(direction="out", kind="status").values_list("text", flat=True)
    assert len(replies) == 1
    assert ticketno.pretty(first.ticket) in replies[0] and "处理中" in replies[0]


async def test_claimed_contact_asking_for_progress_sees_only_its_own_ticket(
    client: Client,
) -> None:
    """A web contact asking "where is my ticket" is never listed another ticket of that contact."""
    first = await post_message(client, contact="status@example.com")
    await settle(client)
    asking = await post_message(client, contact="status@example.com", text="请问我的工单进度？")
    await settle(client)
    assert await Message.filter(direction="out", kind="status").count() == 0
    ticket = await (await client.get(f"/api/v1/tickets/{asking['ticket']}", headers=AUTH)).json()
    [answer] = [m["text"] for m in ticket["messages"] if m["direction"] == "out"]
    assert ticketno.pretty(asking["ticket"]) in answer
    assert ticketno.pretty(first["ticket"]) not in answer


async def test_fourth_auto_reply_in_ten_minutes_is_withheld(client: Client) -> None:
    """Four messages from one customer in a burst: three automatic replies are stored, not four."""
    for i in range(4):
        await post_message(client, contact="loop@example.com", text=f"你好 {i}")
        await settle(client)
    sent = await Message.filter(direction="out").count()
    assert sent == 3
    other = await post_message(client, contact="someone@example.com", text="你好")
    await settle(client)
    assert await _out_kinds(client, other["ticket"]) == ["ack"]
