"""One batch mixing new, redelivered, repeated and follow-up messages, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from intake_hub.envelope import Route
from intake_hub.storage import db
from intake_hub.storage.models import Customer, Event, Message, Team, Ticket, TicketAlias
from intake_hub.storage.outcome import LostRace
from intake_hub.storage.schema import columns
from intake_hub.storage.sql import transaction
from intake_hub.storage.writer import TicketWriter

from .conftest import EnvFactory


async def test_mixed_batch_is_stored_exactly_once_with_right_links(
    database: str, make_env: EnvFactory
) -> None:
    """Redelivered, repeated and follow-up messages in one batch each land once, rightly linked."""
    first = make_env(customer="openid-m")
    await TicketWriter().save(first)
    followup = make_env("还有一个问题", customer="openid-m")
    web = make_env(customer="amy@example.com", channel="web", identity="claimed")
    resent = web.model_copy(update={"id": uuid.uuid4(), "ticket": make_env().ticket})
    stranger = make_env(customer="openid-n")
    writer = TicketWriter()
    results = await asyncio.gather(
        *(writer.save(e) for e in (first, followup, followup, web, resent, stranger, first))
    )

    got = [(r.ticket, r.created, r.duplicate) for r in results]
    assert got == [
        (first.ticket, False, True),
        (first.ticket, False, False),
        (first.ticket, False, True),
        (web.ticket, True, False),
        (web.ticket, False, True),
        (stranger.ticket, True, False),
        (first.ticket, False, True),
    ]
    assert await Ticket.all().count() == 3
    assert await Message.filter(direction="in").count() == 4
    assert await Message.filter(direction="out").count() == 4
    assert await Customer.all().count() == 3
    alias = await TicketAlias.get().prefetch_related("ticket")
    assert (alias.number, alias.ticket.number) == (followup.ticket, first.ticket)
    assert await Event.filter(kind="created").count() == 3
    assert await Event.filter(kind="message").count() == 1


async def test_created_event_names_an_unknown_assignee(database: str, make_env: EnvFactory) -> None:
    """The ticket's one audit row records what classify and route decided, an unknown agent too."""
    env = make_env(route=Route(team="aftersales", assignee="ghost", reasons=("skill",)))
    await TicketWriter().save(env)
    event = await Event.get()
    assert event.kind == "created" and event.data["labels"]["priority"] == "normal"
    assert event.data["route"] == {
        "team": "aftersales",
        "assignee": None,
        "reasons": ["skill"],
        "unknown_assignee": "ghost",
    }


async def test_insert_new_refuses_a_stored_row(database: str) -> None:
    """A row whose key is already stored raises LostRace and leaves nothing of the transaction."""
    client = db.connection()
    cols = columns(Customer, "id", "name", "vip", "verified", "created_at")
    cid, other = uuid.uuid4(), uuid.uuid4()
    async with transaction(client) as sql:
        now = sql.dt(datetime.now(UTC))
        await sql.insert_new("customer", cols, [[sql.uuid(cid), "a", False, True, now]])
    with pytest.raises(LostRace):
        async with transaction(client) as sql:
            await sql.insert_new("customer", cols, [[sql.uuid(other), "b", False, True, now]])
            await sql.insert_new("customer", cols, [[sql.uuid(cid), "a", False, True, now]])
    assert [c.id for c in await Customer.all()] == [cid]


async def test_new_rows_are_seen_by_the_next_statement(database: str) -> None:
    """Rows written with insert_new are there for the next read of the same transaction."""
    cols = columns(Customer, "id", "name", "vip", "verified", "created_at")
    cid = uuid.uuid4()
    async with transaction(db.connection()) as sql:
        now = sql.dt(datetime.now(UTC))
        await sql.insert_new("customer", cols, [[sql.uuid(cid), "a", False, True, now]])
        rows = await sql.fetch("SELECT name FROM customer")
    assert [r[0] for r in rows] == ["a"]
    assert await Customer.all().count() == 1


async def test_a_lone_statement_is_stored_and_nothing_may_follow_it(database: str) -> None:
    """A statement run alone is committed; on PostgreSQL a second one after it is refused."""
    async with transaction(db.connection()) as sql:
        rows = await sql.fetch_alone(
            "INSERT INTO team (id, name) VALUES ('t1', 'Team') RETURNING id"
        )
        if sql.postgres:
            with pytest.raises(RuntimeError):
                await sql.fetch("SELECT 1")
    assert [r[0] for r in rows] == ["t1"]
    assert await Team.all().count() == 1
