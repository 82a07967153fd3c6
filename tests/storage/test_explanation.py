"""The decision record kept on each ticket, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intake_hub.envelope import Extracted, Labels, Reply, Route
from intake_hub.storage.writer import TicketWriter
from intake_hub.tickets import read as queries

from .conftest import EnvFactory

LABELS = Labels(
    category="complaint",
    priority="urgent",
    tags=("legal_threat",),
    confidence=0.86,
    matched=("投诉", "12315"),
    secondary=("logistics",),
    priority_reasons=("default normal", "'投诉' signals urgent"),
    extracted=Extracted(order_numbers=("4102938475610",)),
    rules_version="v-first",
)
ROUTE = Route(team="complaints", reasons=("category 'complaint' goes to team 'complaints'",))


async def test_ticket_shows_what_was_decided_for_it(database: str, make_env: EnvFactory) -> None:
    """The agent view returns category, terms, priority reasons, version, reply and route."""
    env = make_env("我要投诉，再不处理就打12315", labels=LABELS, route=ROUTE)
    await TicketWriter().save(env)

    detail = await queries.get_ticket(env.ticket)
    assert detail is not None and detail.explanation is not None
    why = detail.explanation
    assert why.rules_version == "v-first"
    assert why.labels == LABELS
    assert why.reply == env.reply
    assert why.route == ROUTE


async def test_follow_up_keeps_the_first_messages_explanation(
    database: str, make_env: EnvFactory
) -> None:
    """A follow-up joining the ticket leaves the explanation of the category it shows."""
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    first = make_env("我要投诉", customer="c", received_at=t0, labels=LABELS, route=ROUTE)
    later = make_env(
        "钱什么时候退",
        customer="c",
        received_at=t0 + timedelta(minutes=5),
        labels=Labels(category="refund", matched=("退",), rules_version="v-second"),
        reply=Reply(kind="none", text="no automatic reply: cap"),
        route=Route(team="aftersales"),
    )
    writer = TicketWriter()
    await writer.save(first)
    assert not (await writer.save(later)).created

    detail = await queries.get_ticket(later.ticket)
    assert detail is not None and detail.explanation is not None
    labels = detail.explanation.labels
    assert labels is not None and detail.category == labels.category == "complaint"
    assert detail.explanation.rules_version == "v-first"
    assert detail.explanation.route == ROUTE
