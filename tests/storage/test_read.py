"""Agent list paging and ticket views, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intake_hub.envelope import Labels, Route
from intake_hub.storage.agents import add_agent
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import pretty
from intake_hub.tickets import read as queries

from .conftest import EnvFactory


async def test_get_ticket_and_status_resolve_aliases(database: str, make_env: EnvFactory) -> None:
    """A customer's follow-up number opens the ticket it joined, conversation in order."""
    writer = TicketWriter()
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    first = make_env("第一条", customer="c", received_at=t0, order_id="O-7")
    follow = make_env("第二条", customer="c", received_at=t0 + timedelta(minutes=5), reply=None)
    await writer.save(first)
    await writer.save(follow)

    detail = await queries.get_ticket(follow.ticket)
    assert detail is not None and detail.number == first.ticket
    assert [(m.direction, m.text) for m in detail.messages] == [
        ("in", "第一条"),
        ("out", first.reply.text if first.reply else ""),
        ("in", "第二条"),
    ]
    assert detail.customer.name == "王女士" and detail.order_id == "O-7"

    status = await queries.ticket_status(pretty(follow.ticket).lower())
    assert status is not None and status.number == first.ticket
    assert status.status == "received" and len(status.messages) == 3
    assert await queries.get_ticket("0000000000Z") is None
    assert await queries.ticket_status("nonsense") is None


async def test_list_filters(database: str, make_env: EnvFactory) -> None:
    """Agents see only the tickets matching every filter they set."""
    await add_agent("li", "小李", "agent", team="aftersales")
    writer = TicketWriter()
    await writer.save(make_env(customer="a", channel="web"))
    await writer.save(
        make_env(
            customer="b",
            channel="email",
            labels=Labels(category="refund", priority="high"),
            route=Route(team="aftersales", assignee="li"),
        )
    )
    page = await queries.list_tickets(category="refund")
    assert [(t.channel, t.assignee, t.status) for t in page.items] == [
        ("email", "li", "in_progress")
    ]
    assert len((await queries.list_tickets(channel="web")).items) == 1
    assert len((await queries.list_tickets(assignee="li", status="in_progress")).items) == 1
    assert (await queries.list_tickets(status="closed")).items == []
    counts = await queries.ticket_counts()
    assert counts == {("web", "received"): 1, ("email", "in_progress"): 1}


async def test_cursor_paging_has_no_gaps_or_repeats(database: str, make_env: EnvFactory) -> None:
    """Paging through all tickets newest first visits each exactly once, ties included."""
    writer = TicketWriter()
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    # Pairs share a timestamp, so the id must break ties.
    envs = [
        make_env(customer=f"p-{i}", received_at=t0 + timedelta(seconds=i // 2)) for i in range(23)
    ]
    for env in envs:
        await writer.save(env)
    seen: list[str] = []
    cursor = None
    while True:
        page = await queries.list_tickets(limit=5, cursor=cursor)
        seen += [t.number for t in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert sorted(seen) == sorted(e.ticket for e in envs)
    assert len(seen) == len(set(seen))
    created = [t.created_at for t in (await queries.list_tickets(limit=200)).items]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "WyJ4IiwgInkiXQ"])
async def test_invalid_cursor_raises(database: str, cursor: str) -> None:
    """A tampered or garbage cursor is a ValueError (the API answers 400)."""
    with pytest.raises(ValueError):
        await queries.list_tickets(cursor=cursor)
