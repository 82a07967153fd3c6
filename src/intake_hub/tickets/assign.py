"""Manual reassignment: the ticket changes hands, slots move, and an audit event says why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from intake_hub.storage import app_events
from intake_hub.storage.app_events import NewEvent
from intake_hub.storage.models import Agent, Event, Ticket
from intake_hub.tickets.errors import UnknownAssignee
from intake_hub.tickets.read import find_ticket
from intake_hub.tickets.views import AssignOut

EVENT = "reassigned"  # by hand; the pipeline records "assigned"


async def reassign(number: str, assignee: str, reason: str, actor: str) -> AssignOut | None:
    """Give ticket `number` to `assignee`; None when no such ticket, UnknownAssignee if no agent.

    A supervisor's choice is deliberate, so it is not held to the capacity cap; the new
    agent's slot count goes up and the previous agent's down, in the same transaction.
    """
    found = await find_ticket(number)
    if found is None:
        return None
    async with in_transaction():
        agent = await Agent.get_or_none(id=assignee)
        if agent is None:
            raise UnknownAssignee(assignee)
        ticket = await Ticket.select_for_update().get(id=found.id)
        previous: str | None = ticket.assignee_id  # type: ignore[attr-defined]
        team: str | None = agent.team_id or ticket.team  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        await Ticket.filter(id=ticket.id).update(assignee_id=assignee, team=team, updated_at=now)
        if previous != assignee:
            await Agent.filter(id=assignee).update(open_count=F("open_count") + 1)
            if previous is not None:
                await Agent.filter(id=previous, open_count__gt=0).update(
                    open_count=F("open_count") - 1
                )
        event_id = uuid.uuid4()
        await Event.create(
            id=event_id,
            ticket_id=ticket.id,
            kind=EVENT,
            actor=actor,
            data={"from": previous, "to": assignee, "team": team, "reason": reason},
            created_at=now,
        )
        if previous != assignee and app_events.wanted(ticket.source):
            assert ticket.source is not None
            handed = {"assignee": assignee, "team": team, "previous": previous}
            await app_events.add(
                NewEvent(
                    f"assign:{event_id}",
                    ticket.source,
                    ticket.id,
                    ticket.number,
                    app_events.ASSIGNED,
                    ticket.status,
                    now,
                    handed,
                )
            )
    return AssignOut(number=ticket.number, assignee=assignee, previous=previous, team=team)
