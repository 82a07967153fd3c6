"""The persist writer on SQLite and PostgreSQL: tickets, idempotency, follow-ups, batching."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from intake_hub.envelope import CustomerRef, Route
from intake_hub.storage import db
from intake_hub.storage.agents import add_agent
from intake_hub.storage.models import Customer, Event, Message, Ticket, TicketAlias
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import pretty

from .conftest import EnvFactory


async def _kinds(number: str) -> list[str]:
    ticket = await Ticket.get(number=number)
    return sorted(await Event.filter(ticket_id=ticket.id).values_list("kind", flat=True))


async def test_new_ticket_with_customer_messages_and_events(
    database: str, make_env: EnvFactory
) -> None:
    """A first message becomes a ticket with its customer, both messages and an audit trail."""
    await add_agent("li", "小李", "agent", team="aftersales")
    env = make_env(
        customer="openid-a",
        subject="快递",
        order_id="O-1",
        route=Route(team="aftersales", assignee="li", reasons=("least loaded",)),
    )
    saved = await TicketWriter().save(env)
    assert (saved.ticket, saved.created, saved.duplicate) == (env.ticket, True, False)

    ticket = await Ticket.get(number=env.ticket).prefetch_related("customer")
    assert ticket.status == "in_progress"
    assert (ticket.category, ticket.priority, ticket.tags) == ("logistics", "normal", ["物流延迟"])
    assert (ticket.team, ticket.assignee_id, ticket.order_id) == ("aftersales", "li", "O-1")  # type: ignore[attr-defined]
    assert ticket.subject == "快递" and ticket.channel == "wechat"
    assert ticket.customer.name == "王女士"
    messages = await Message.filter(ticket_id=ticket.id).order_by("created_at").values()
    assert [(m["direction"], m["kind"]) for m in messages] == [("in", None), ("out", "ack")]
    assert messages[0]["external_id"] == env.external_id
    assert await _kinds(env.ticket) == ["created"]
    created = await Event.get(kind="created")
    assert created.data["labels"]["category"] == "logistics"
    assert created.data["route"] == {
        "team": "aftersales",
        "assignee": "li",
        "reasons": ["least loaded"],
    }


async def test_unknown_assignee_leaves_ticket_unassigned(
    database: str, make_env: EnvFactory
) -> None:
    """A route naming an agent who does not exist still stores the ticket, unassigned."""
    env = make_env(route=Route(team="aftersales", assignee="ghost"))
    await TicketWriter().save(env)
    ticket = await Ticket.get(number=env.ticket)
    assert ticket.assignee_id is None and ticket.status == "received"  # type: ignore[attr-defined]


async def test_no_reply_row_when_reply_kind_none(database: str, make_env: EnvFactory) -> None:
    """A message the responder chose not to answer has no outbound row."""
    from intake_hub.envelope import Reply

    env = make_env(reply=Reply(kind="none", text=""))
    await TicketWriter().save(env)
    assert await Message.filter(direction="out").count() == 0


async def test_redelivery_makes_no_second_row(database: str, make_env: EnvFactory) -> None:
    """A redelivered envelope changes nothing and reports the same ticket as a duplicate."""
    env = make_env()
    writer = TicketWriter()
    first = await writer.save(env)
    again = await TicketWriter().save(env)
    assert first.created and not first.duplicate
    assert (again.ticket, again.created, again.duplicate) == (env.ticket, False, True)
    assert await Ticket.all().count() == 1
    assert await Message.all().count() == 2
    assert await Event.all().count() == 1


async def test_fifty_concurrent_saves_of_one_envelope(database: str, make_env: EnvFactory) -> None:
    """Fifty simultaneous deliveries of one message store one ticket and one message."""
    env = make_env(reply=None)
    writer = TicketWriter(batch_size=8)
    results = await asyncio.gather(*(writer.save(env) for _ in range(50)))
    assert {r.ticket for r in results} == {env.ticket}
    assert sum(not r.duplicate for r in results) == 1
    assert await Ticket.all().count() == 1
    assert await Message.all().count() == 1


async def test_same_provider_message_under_two_envelope_ids(
    database: str, make_env: EnvFactory
) -> None:
    """The same provider message id arriving twice (new envelope ids) is one message."""
    env = make_env()
    twin = make_env(external_id=env.external_id)
    later = make_env(external_id=env.external_id)
    writer = TicketWriter()
    first, second = await asyncio.gather(writer.save(env), writer.save(twin))
    third = await writer.save(later)
    assert first.created and second.duplicate and third.duplicate
    assert second.ticket == third.ticket == env.ticket
    assert await Message.filter(direction="in").count() == 1
    assert await Ticket.all().count() == 1


async def test_followup_joins_open_ticket(database: str, make_env: EnvFactory) -> None:
    """A second message from the same customer on the same channel lands on their open ticket."""
    writer = TicketWriter()
    first = make_env(customer="openid-b")
    second = make_env("还有发票的问题", customer="openid-b", name=None)
    await writer.save(first)
    saved = await writer.save(second)
    assert (saved.ticket, saved.created, saved.duplicate) == (first.ticket, False, False)
    assert await Ticket.all().count() == 1
    alias = await TicketAlias.get(number=second.ticket).prefetch_related("ticket")
    assert alias.ticket.number == first.ticket
    assert await _kinds(first.ticket) == ["created", "message"]
    ticket = await Ticket.get(number=first.ticket)
    assert ticket.updated_at >= second.received_at


async def test_other_channel_starts_new_ticket(database: str, make_env: EnvFactory) -> None:
    """The same customer key on another channel is another identity and another ticket."""
    writer = TicketWriter()
    await writer.save(make_env(customer="same-key", channel="wechat"))
    saved = await writer.save(make_env(customer="same-key", channel="email"))
    assert saved.created
    assert await Customer.all().count() == 2


async def test_followup_by_quoted_number_reopens(database: str, make_env: EnvFactory) -> None:
    """Quoting a resolved ticket's number (any channel) reopens it and adds the message."""
    writer = TicketWriter()
    first = make_env(customer="c-1", channel="web")
    await writer.save(first)
    await Ticket.filter(number=first.ticket).update(status="resolved")
    quote = make_env(
        f"关于工单 {pretty(first.ticket)} 还没解决", customer="c-1", channel="web", reply=None
    )
    saved = await writer.save(quote)
    assert saved.ticket == first.ticket and not saved.created
    ticket = await Ticket.get(number=first.ticket)
    assert ticket.status == "received"
    assert "reopened" in await _kinds(first.ticket)


async def test_quoted_number_of_someone_else_is_ignored(
    database: str, make_env: EnvFactory
) -> None:
    """Quoting another customer's ticket number never attaches to that ticket."""
    writer = TicketWriter()
    victim = make_env(customer="victim", channel="email")
    await writer.save(victim)
    intruder = make_env(f"Re: ticket {victim.ticket}", customer="intruder", channel="email")
    saved = await writer.save(intruder)
    assert saved.created and saved.ticket == intruder.ticket
    victim_ticket = await Ticket.get(number=victim.ticket)
    assert await Message.filter(ticket_id=victim_ticket.id, direction="in").count() == 1


async def test_quoted_alias_number_resolves(database: str, make_env: EnvFactory) -> None:
    """Quoting the number a follow-up was given reaches the ticket it joined."""
    writer = TicketWriter()
    first = make_env(customer="c-2")
    follow = make_env(customer="c-2")
    await writer.save(first)
    await writer.save(follow)
    await Ticket.filter(number=first.ticket).update(status="closed")
    saved = await writer.save(make_env(f"单号 {follow.ticket}", customer="c-2"))
    assert saved.ticket == first.ticket


async def test_window_expiry_makes_new_ticket(database: str, make_env: EnvFactory) -> None:
    """A message after the follow-up window opens a fresh ticket."""
    writer = TicketWriter(followup_window=3600)
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    first = make_env(customer="c-3", received_at=t0)
    inside = make_env(customer="c-3", received_at=t0 + timedelta(minutes=59))
    outside = make_env(customer="c-3", received_at=t0 + timedelta(minutes=59 + 61))
    await writer.save(first)
    assert (await writer.save(inside)).ticket == first.ticket
    late = await writer.save(outside)
    assert late.created and late.ticket == outside.ticket


async def test_intra_batch_followup(database: str, make_env: EnvFactory) -> None:
    """Two messages from a new customer in one batch share the first one's new ticket."""
    writer = TicketWriter()
    a = make_env(customer="new-c", name=None)
    b = make_env("补充: 订单号 O-9", customer="new-c")
    other = make_env(customer="someone-else")
    ra, rb, ro = await asyncio.gather(writer.save(a), writer.save(b), writer.save(other))
    assert ra.created and rb.ticket == a.ticket and not rb.created
    assert ro.created
    assert await Ticket.all().count() == 2
    assert await Customer.all().count() == 2


async def test_customer_details_are_updated(database: str, make_env: EnvFactory) -> None:
    """Contact details a verified customer gives later are added to them, not lost."""
    writer = TicketWriter()
    await writer.save(make_env(customer="c-4"))
    later = make_env(customer="c-4", name="王芳")
    phone = CustomerRef(key="c-4", phone="13800000000", identity="verified")
    await writer.save(later.model_copy(update={"customer": phone}))
    customer = await Customer.get()
    assert (customer.name, customer.phone) == ("王女士", "13800000000")


async def test_failed_batch_fails_every_caller(database: str, make_env: EnvFactory) -> None:
    """When the database refuses a batch, every message in it fails (for the bus to retry)."""
    writer = TicketWriter()
    envs = [make_env(customer=f"c-{i}") for i in range(3)]
    conn = db.connection()
    await conn.execute_script('ALTER TABLE "event" RENAME TO "event_away"')
    try:
        results = await asyncio.gather(*(writer.save(e) for e in envs), return_exceptions=True)
    finally:
        await conn.execute_script('ALTER TABLE "event_away" RENAME TO "event"')
    assert all(isinstance(r, Exception) for r in results)
    assert await Ticket.all().count() == 0
    assert all(r.created for r in await asyncio.gather(*(writer.save(e) for e in envs)))
