"""The roster's atomic claims, the reply counter, open-ticket lookups and reassignment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from intake_hub.api.assign import UnknownAssignee
from intake_hub.envelope import Labels, Route
from intake_hub.storage.agents import add_agent
from intake_hub.storage.models import Agent, Event, Ticket
from intake_hub.storage.replies import DbReplyGuard, DbTicketLookup, window_start
from intake_hub.storage.roster import DbRoster
from intake_hub.storage.writer import TicketWriter
from intake_hub.tickets.assign import reassign

from .conftest import EnvFactory


async def _slots(login: str) -> int:
    agent = await Agent.get(id=login)
    return agent.open_count


async def test_two_rosters_racing_respect_the_cap(database: str) -> None:
    """Two workers with stale caches picking at once never give an agent more than capacity."""
    await add_agent("solo", "Solo", "agent", team="t", capacity=5)
    first, second = DbRoster(refresh_s=60), DbRoster(refresh_s=60)
    await first.refresh()
    await second.refresh()
    picks = await asyncio.gather(
        *(r.pick("t", priority="urgent") for _ in range(10) for r in (first, second))
    )
    assert sorted(p for p in picks if p is not None) == ["solo"] * 5
    assert picks.count(None) == 15
    assert await _slots("solo") == 5


async def test_soft_cap_keeps_room_for_urgent(database: str) -> None:
    """Normal tickets stop at 80% of capacity; an urgent one still gets the last slot."""
    await add_agent("a", "A", "agent", team="t", capacity=5)
    roster = DbRoster(refresh_s=60)
    normal = [await roster.pick("t") for _ in range(5)]
    assert normal == ["a"] * 4 + [None]
    assert await roster.pick("t", priority="urgent") == "a"
    assert await roster.pick("t", priority="urgent") is None


async def test_urgent_goes_to_fewest_urgent(database: str, make_env: EnvFactory) -> None:
    """An urgent ticket goes to the agent with fewer urgent tickets, though busier overall."""
    await add_agent("busy", "Busy", "agent", team="t")
    await add_agent("hot", "Hot", "agent", team="t")
    writer = TicketWriter()
    for i in range(3):
        await writer.save(make_env(customer=f"n{i}", route=Route(team="t", assignee="busy")))
    urgent = Labels(category="complaint", priority="urgent")
    await writer.save(make_env(customer="u", labels=urgent, route=Route(team="t", assignee="hot")))
    roster = DbRoster(refresh_s=60)
    assert await roster.pick("t") == "hot"  # weighted load: busy 3x2=6, hot 1x4=4
    assert await roster.pick("t", priority="urgent") == "busy"


async def test_round_robin_turns(database: str, make_env: EnvFactory) -> None:
    """Round robin gives the next agent in turn, whatever their load, skipping the unfit."""
    for login in ("a", "b", "c"):
        await add_agent(
            login, login.upper(), "agent", team="t", skills=["x"] if login != "b" else []
        )
    writer = TicketWriter()
    for i in range(3):
        await writer.save(make_env(customer=f"a{i}", route=Route(team="t", assignee="a")))
    roster = DbRoster(refresh_s=60)
    picks = [await roster.pick("t", strategy="round_robin") for _ in range(4)]
    assert picks == ["a", "b", "c", "a"]
    assert [await roster.pick("t", ("x",), strategy="round_robin") for _ in range(2)] == ["c", "a"]


async def test_offline_agents_get_nothing(database: str) -> None:
    """An agent who went offline after the cache was filled is not claimed."""
    await add_agent("a", "A", "agent", team="t")
    roster = DbRoster(refresh_s=60)
    await roster.refresh()
    await Agent.filter(id="a").update(online=False)
    assert await roster.pick("t") is None


async def test_recount_waits_for_quiet(database: str, make_env: EnvFactory) -> None:
    """A slot claimed but never stored comes back only after the grace period."""
    await add_agent("a", "A", "agent", team="t", capacity=1)
    roster = DbRoster(refresh_s=0, grace_s=3600)
    assert await roster.pick("t", priority="urgent") == "a"
    assert await roster.pick("t", priority="urgent") is None  # refreshed, slot kept
    roster.grace_s = 0
    assert await roster.pick("t", priority="urgent") == "a"  # recounted: no ticket stored
    await TicketWriter().save(make_env(route=Route(team="t", assignee="a")))
    await roster.refresh()
    assert await _slots("a") == 1  # the stored ticket holds it


async def test_reply_guard_counts_atomically(database: str) -> None:
    """Ten concurrent replies to one customer: exactly three allowed; a new window resets."""
    guard = DbReplyGuard()
    now = datetime(2025, 6, 1, 9, 31, tzinfo=UTC)
    results = await asyncio.gather(
        *(guard.take("web", "c-1", limit=3, window_minutes=10, now=now) for _ in range(10))
    )
    assert results.count(True) == 3
    assert await guard.take("web", "c-2", limit=3, window_minutes=10, now=now)
    assert await guard.take("wechat", "c-1", limit=3, window_minutes=10, now=now)
    later = now + timedelta(minutes=10)
    assert await guard.take("web", "c-1", limit=3, window_minutes=10, now=later)


def test_window_start() -> None:
    """Windows are fixed spans from the epoch: 09:31 and 09:39 share the 09:30 window."""
    a = window_start(datetime(2025, 6, 1, 9, 31, tzinfo=UTC), 10)
    b = window_start(datetime(2025, 6, 1, 9, 39, 59, tzinfo=UTC), 10)
    assert a == b == datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


async def test_lookup_open_tickets(database: str, make_env: EnvFactory) -> None:
    """The lookup finds the customer's open tickets on that channel only, newest first."""
    writer = TicketWriter(followup_window=0)
    t0 = datetime.now(UTC) - timedelta(hours=2)
    old = make_env("第一单", customer="me", received_at=t0)
    new = make_env("第二单", customer="me", received_at=t0 + timedelta(hours=1))
    await writer.save(old)
    await writer.save(new)
    await writer.save(make_env("别人", customer="other"))
    await writer.save(make_env("网页", customer="me", channel="web"))
    await Ticket.filter(number=old.ticket).update(status="in_progress")
    found = await DbTicketLookup().open_tickets("wechat", "me")
    assert [(t.number, t.status) for t in found] == [
        (new.ticket, "received"),
        (old.ticket, "in_progress"),
    ]
    await Ticket.filter(number=old.ticket).update(status="resolved")
    assert [t.number for t in await DbTicketLookup().open_tickets("wechat", "me")] == [new.ticket]
    assert await DbTicketLookup().open_tickets("wechat", "nobody") == []


async def test_reassign_moves_slots_and_records_reason(database: str, make_env: EnvFactory) -> None:
    """A manual reassignment changes the assignee and team, moves a slot, and is audited."""
    await add_agent("a", "A", "agent", team="aftersales")
    await add_agent("b", "B", "agent", team="complaints")
    roster = DbRoster(refresh_s=60)
    assert await roster.pick("aftersales") == "a"
    env = make_env(route=Route(team="aftersales", assignee="a"))
    await TicketWriter().save(env)
    done = await reassign(env.ticket, "b", "客户升级投诉", "boss")
    assert done is not None
    assert (done.previous, done.assignee, done.team) == ("a", "b", "complaints")
    ticket = await Ticket.get(number=env.ticket)
    assert (ticket.assignee_id, ticket.team) == ("b", "complaints")  # type: ignore[attr-defined]
    assert (await _slots("a"), await _slots("b")) == (0, 1)
    event = await Event.get(ticket_id=ticket.id, kind="reassigned")
    assert event.actor == "boss"
    assert event.data == {"from": "a", "to": "b", "team": "complaints", "reason": "客户升级投诉"}
    assert await reassign("0000000000A", "b", "x", "boss") is None
    with pytest.raises(UnknownAssignee):
        await reassign(env.ticket, "ghost", "x", "boss")
