"""An agent's reply and a status change: one transaction each, with the audit event, the
slot bookkeeping and, where the ticket's connector can push, the delivery queued beside them.

The outbound row is written in the same transaction as the stored reply, so a reply the
agent was told about always reaches the customer's channel, and a reply that failed to
store never does. The outbox's unique key and claim make its sending at most once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from intake_hub.ids import uuid7
from intake_hub.status import OPEN_STATUSES
from intake_hub.storage import app_events
from intake_hub.storage.app_events import NewEvent
from intake_hub.storage.models import Agent, Event, Message, Ticket
from intake_hub.tickets.errors import Conflict, KeyReused, NotAllowed
from intake_hub.tickets.outbound import Delivery, Outbound
from intake_hub.tickets.read import find_ticket
from intake_hub.tickets.views import MessageOut, Principal, ReplyOut, StatusOut, Via

# (ticket number, new status, first inbound text) -> the notice for the customer, or None.
Notice = Callable[[str, str, str], str | None]

LEADS = ("supervisor", "admin")
_KEYS = uuid.UUID("6f1d3c52-8a0e-4c55-9d0b-3c8f1e2a7b41")


@dataclass(frozen=True)
class Handling:
    """Replies and status changes; `outbound` are the connectors' ways out, by source."""

    notice: Notice
    outbound: Mapping[str, Outbound] = field(default_factory=dict)

    async def reply(
        self, number: str, text: str, key: str | None, who: Principal
    ) -> tuple[ReplyOut, bool] | None:
        """Store the agent's reply and queue it to the customer; (reply, replayed) or None."""
        # A ticket the caller may not read is missing to them (404); one they may read
        # but not work is refused by `_may_work` (403).
        found = await find_ticket(number, who)
        if found is None:
            return None
        # A retried request with the same key names the same message, so it is stored once.
        message_id = uuid.uuid5(_KEYS, f"{found.id}:{who.login}:{key}") if key else uuid7()
        if key and (done := await self._replayed(found, message_id, text)) is not None:
            return done, True
        try:
            return await self._reply(found.id, message_id, text, who), False
        except IntegrityError:
            if key and (done := await self._replayed(found, message_id, text)) is not None:
                return done, True
            raise

    async def _reply(
        self, ticket_id: uuid.UUID, message_id: uuid.UUID, text: str, who: Principal
    ) -> ReplyOut:
        now = datetime.now(UTC)
        async with in_transaction():
            ticket = await Ticket.select_for_update().get(id=ticket_id)
            await _may_work(who, ticket)
            previous, assignee = ticket.status, ticket.assignee_id  # type: ignore[attr-defined]
            status = "in_progress" if previous == "received" else previous
            taken = assignee is None and who.role == "agent"
            if taken:
                # The agent who answers an unassigned ticket of their team takes it.
                assignee = who.login
                if status in OPEN_STATUSES:
                    await Agent.filter(id=assignee).update(open_count=F("open_count") + 1)
            await _update(ticket, previous, status=status, assignee_id=assignee, updated_at=now)
            if taken:
                took = {"assignee": assignee, "team": ticket.team, "previous": None}
                await _tell_app(ticket, f"take:{message_id}", app_events.ASSIGNED, now, took)
            await Message.create(
                id=message_id,
                ticket_id=ticket.id,
                direction="out",
                channel=ticket.channel,
                kind=None,
                text=text,
                created_at=now,
                dedupe_key=f"agent:{message_id}",
            )
            delivery = await self._push(ticket, f"agent:{message_id}", text, now)
            answer = {"id": str(message_id), "text": text, "kind": None, "by": "agent"}
            answer["agent"] = who.login
            await _tell_app(
                ticket, f"agent:{message_id}", app_events.REPLIED, now, {"message": answer}
            )
            await _event(ticket, "replied", who, now, {"message": str(message_id), "to": delivery})
        return ReplyOut(
            number=ticket.number,
            status=status,
            assignee=assignee,
            message=MessageOut(direction="out", text=text, channel=ticket.channel, at=now),
            delivery=delivery,
        )

    async def _replayed(self, found: Ticket, message_id: uuid.UUID, text: str) -> ReplyOut | None:
        row = await Message.get_or_none(id=message_id)
        if row is None:
            return None
        if row.text != text:
            raise KeyReused(message_id)
        ticket = await Ticket.get(id=found.id)
        port = self.outbound.get(ticket.source or "")
        queued = port is not None and await port.queued(f"agent:{message_id}")
        return ReplyOut(
            number=ticket.number,
            status=ticket.status,
            assignee=ticket.assignee_id,  # type: ignore[attr-defined]
            message=MessageOut(
                direction="out",
                text=row.text,
                channel=row.channel,
                at=row.created_at,
            ),
            delivery=port.channel if port is not None and queued else "status_page",
        )

    async def move(
        self, number: str, status: str, note: str | None, who: Principal
    ) -> StatusOut | None:
        """Move the ticket to `status`, keep the agent's slot count right, tell the customer."""
        # Read scope first, as for a reply: unreadable is 404, readable but not workable 403.
        found = await find_ticket(number, who)
        if found is None:
            return None
        now = datetime.now(UTC)
        first = await _first_inbound_text(found.id)
        async with in_transaction():
            ticket = await Ticket.select_for_update().get(id=found.id)
            await _may_work(who, ticket)
            previous = ticket.status
            if previous == status:
                return StatusOut(
                    number=ticket.number, status=status, previous=previous, notified=False
                )
            was_open, is_open = previous in OPEN_STATUSES, status in OPEN_STATUSES
            changes: dict[str, Any] = {"status": status, "updated_at": now}
            if was_open != is_open:
                changes["closed_at"] = None if is_open else now
                if (assignee := ticket.assignee_id) is not None:  # type: ignore[attr-defined]
                    # A supervisor's reopening is deliberate: not held to the capacity cap.
                    slots = Agent.filter(id=assignee)
                    if is_open:
                        await slots.update(open_count=F("open_count") + 1)
                    else:
                        await slots.filter(open_count__gt=0).update(open_count=F("open_count") - 1)
            await _update(ticket, previous, **changes)
            event = await _event(
                ticket, "status_changed", who, now, {"from": previous, "to": status, "note": note}
            )
            changed = {"previous": previous, "note": note, "by": who.login}
            await _tell_app(ticket, f"status:{event.id}", app_events.STATUS_CHANGED, now, changed)
            text = self.notice(ticket.number, status, first)
            pushed = text is not None and (
                await self._push(ticket, f"status:{event.id}", text, now) != "status_page"
            )
        return StatusOut(number=ticket.number, status=status, previous=previous, notified=pushed)

    async def _push(self, ticket: Ticket, key: str, text: str, now: datetime) -> Via:
        """Queue `text` on the ticket's own channel where it can push; else the status page."""
        source, to = ticket.source, ticket.customer_key
        port = self.outbound.get(source or "")
        if port is None or not source or not to:
            return "status_page"
        await port.enqueue(
            Delivery(key, ticket.id, ticket.number, source, to, text, ticket.updated_at, now)
        )
        return port.channel


async def _may_work(who: Principal, ticket: Ticket) -> None:
    """Leads work any ticket; an agent works their own, or an unassigned one of their team."""
    if who.role in LEADS:
        return
    assignee = ticket.assignee_id  # type: ignore[attr-defined]
    if assignee == who.login:
        return
    if assignee is None:
        agent = await Agent.get_or_none(id=who.login)
        team = agent.team_id if agent is not None else None  # type: ignore[attr-defined]
        if team is not None and team == ticket.team:
            return
    raise NotAllowed(
        "Only the ticket's assignee, an agent of its team while it is unassigned, "
        "or a supervisor may work this ticket."
    )


async def _update(ticket: Ticket, previous: str, **changes: Any) -> None:
    # Conditional on the status read: on SQLite `select_for_update` locks nothing.
    if not await Ticket.filter(id=ticket.id, status=previous).update(**changes):
        raise Conflict(ticket.number)
    for name, value in changes.items():
        setattr(ticket, name, value)


async def _event(
    ticket: Ticket, kind: str, who: Principal, now: datetime, data: dict[str, Any]
) -> Event:
    return await Event.create(
        id=uuid7(), ticket_id=ticket.id, kind=kind, actor=who.login, data=data, created_at=now
    )


async def _first_inbound_text(ticket_id: uuid.UUID) -> str:
    rows = (
        await Message.filter(ticket_id=ticket_id, direction="in")
        .order_by("created_at")
        .limit(1)
        .values_list("text", flat=True)
    )
    return str(rows[0]) if rows else ""


async def _tell_app(
    ticket: Ticket, key: str, kind: str, now: datetime, data: dict[str, Any]
) -> None:
    """Queue the change for the app the ticket came from, if it came from one."""
    if app_events.wanted(ticket.source):
        assert ticket.source is not None
        await app_events.add(
            NewEvent(key, ticket.source, ticket.id, ticket.number, kind, ticket.status, now, data)
        )
