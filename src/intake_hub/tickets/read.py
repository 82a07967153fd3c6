"""Read side for the agent API and the customer status page.

Who reads what (`visible`): admins every ticket; supervisors their team's tickets, the
tickets with no team and those assigned to them; agents their team's tickets and those
assigned to them. The filter is part of the SQL query, and a ticket outside it looks
exactly like a missing one (None). Callers without a `Principal` (metrics, the customer
status page, which holds the access code instead) read unscoped.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.expressions import Q
from tortoise.functions import Count

from intake_hub.storage import attachments as attachment_rows
from intake_hub.storage import outboxes
from intake_hub.storage.attachments import AttachmentRow
from intake_hub.storage.models import Agent, Message, Ticket, TicketAlias
from intake_hub.ticketno import normalize
from intake_hub.tickets.views import (
    AgentMessageOut,
    AttachmentOut,
    CustomerOut,
    DeliveryOut,
    MessageOut,
    Principal,
    TicketDetail,
    TicketPage,
    TicketStatus,
    TicketSummary,
)

MAX_LIMIT = 200
# Where agents download a message's files; customers use their ticket's path with its code.
AGENT_FILES = "/api/v1/attachments"
_SUMMARY = (
    "id",
    "number",
    "status",
    "channel",
    "category",
    "priority",
    "tags",
    "team",
    "assignee_id",
    "subject",
    "created_at",
    "updated_at",
)


def customer_files(number: str) -> str:
    """Where the holder of ticket `number`'s code downloads its files (add `?code=`)."""
    return f"/tickets/{number}/attachments"


def encode_cursor(created_at: datetime, ticket_id: UUID) -> str:
    """The opaque cursor that continues after the given ticket."""
    raw = json.dumps([created_at.isoformat(), str(ticket_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The position a cursor stands for; `ValueError` if it is not one we made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, tid = json.loads(raw)
        created_at = datetime.fromisoformat(at)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return created_at, UUID(tid)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid cursor: {cursor!r}") from exc


async def visible(who: Principal) -> Q | None:
    """The tickets `who` may read, as a query filter; None when they may read every one."""
    if who.role == "admin":
        return None
    # Read per call, not from the token cache: a team change applies at once.
    agent = await Agent.get_or_none(id=who.login)
    team: str | None = agent.team_id if agent is not None else None  # type: ignore[attr-defined]
    scope = Q(assignee_id=who.login)
    if team is not None:
        scope |= Q(team=team)
    if who.role == "supervisor":
        scope |= Q(team__isnull=True)
    return scope


def _summary(row: dict[str, Any]) -> TicketSummary:
    data = {k: v for k, v in row.items() if k in TicketSummary.model_fields}
    return TicketSummary(**data, assignee=row["assignee_id"])


async def list_tickets(
    *,
    status: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    assignee: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    who: Principal | None = None,
) -> TicketPage:
    """One page of the tickets `who` may read, newest first, filtered; `next` continues."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = Ticket.all()
    if who is not None and (scope := await visible(who)) is not None:
        query = query.filter(scope)
    for name, value in (
        ("status", status),
        ("category", category),
        ("channel", channel),
        ("assignee_id", assignee),
    ):
        if value is not None:
            query = query.filter(**{name: value})
    if cursor is not None:
        at, tid = decode_cursor(cursor)
        query = query.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=tid))
    rows = await query.order_by("-created_at", "-id").limit(limit + 1).values(*_SUMMARY)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return TicketPage(
        items=[_summary(r) for r in rows],
        next=encode_cursor(last["created_at"], last["id"]) if more and last else None,
    )


async def _resolve(number: str, who: Principal | None = None) -> Ticket | None:
    canonical = normalize(number) or number
    ticket = await Ticket.get_or_none(number=canonical)
    if ticket is None:
        alias = await TicketAlias.get_or_none(number=canonical).select_related("ticket")
        ticket = alias.ticket if alias is not None else None
    if ticket is None or who is None or (scope := await visible(who)) is None:
        return ticket
    # Out of scope answers like a missing number: no hint that the ticket exists.
    return ticket if await Ticket.filter(scope, id=ticket.id).exists() else None


async def find_ticket(number: str, who: Principal | None = None) -> Ticket | None:
    """The ticket a number names, its own or a follow-up's; None if `who` may not read it."""
    return await _resolve(number, who)


def _attachment(row: AttachmentRow, base: str) -> AttachmentOut:
    stored = row.state == "stored"
    url = f"{base}/{row.id}" if stored else None
    image = stored and (row.content_type or "").startswith("image/")
    return AttachmentOut(
        id=str(row.id),
        kind=row.kind,
        state=row.state,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        url=url,
        thumbnail_url=f"{url}/thumbnail" if image else None,
        ref=row.source_ref if row.state == "link" else None,
    )


async def _conversation(ticket: Ticket, files: str, *, agents: bool) -> list[AgentMessageOut]:
    """The messages, each with its attachments served under the URL prefix `files`; for
    `agents`, each reply pushed to the customer's channel with how far it got."""
    rows = await (
        Message.filter(ticket_id=ticket.id)
        .order_by("created_at", "direction")
        .values("id", "direction", "text", "channel", "created_at", "kind", "dedupe_key")
    )
    inbound = [UUID(str(r["id"])) for r in rows if r["direction"] == "in"]
    sent = await attachment_rows.of_messages(inbound)
    # A reply's outbox key is its message's dedupe key (`agent:<id>`, `reply:<envelope>`).
    replies = [r["dedupe_key"] for r in rows if r["direction"] == "out"]
    pushed = await outboxes.outcomes(replies) if agents else {}
    return [
        AgentMessageOut(
            direction=r["direction"],
            text=r["text"],
            channel=r["channel"],
            at=r["created_at"],
            kind=r["kind"],
            attachments=[_attachment(a, files) for a in sent.get(UUID(str(r["id"])), ())],
            delivery=_delivery(pushed.get(r["dedupe_key"])),
        )
        for r in rows
    ]


def _delivery(outcome: outboxes.Outcome | None) -> DeliveryOut | None:
    if outcome is None:
        return None
    return DeliveryOut.model_validate(outcome, from_attributes=True)


async def ticket_of(number: str, channel: str, customer_key: str) -> tuple[str, bool] | None:
    """Ticket `number` (its own or a follow-up's) and whether it is that channel customer's.

    For a channel's proof of ownership at its edge (an app's user, a mail's own address);
    None while no ticket has that number.
    """
    ticket = await _resolve(number)
    if ticket is None:
        return None
    return ticket.number, (ticket.channel, ticket.customer_key) == (channel, customer_key)


async def get_ticket(number: str, who: Principal | None = None) -> TicketDetail | None:
    """A ticket with its customer and conversation; None if missing or `who` may not read it."""
    ticket = await _resolve(number, who)
    if ticket is None:
        return None
    customer = await ticket.customer
    row = {name: getattr(ticket, name) for name in _SUMMARY}
    return TicketDetail(
        **{k: v for k, v in row.items() if k in TicketSummary.model_fields},
        assignee=ticket.assignee_id,  # type: ignore[attr-defined]
        customer=CustomerOut(
            id=str(customer.id),
            key=ticket.customer_key,
            name=customer.name,
            phone=customer.phone,
            email=customer.email,
            vip=customer.vip,
            verified=customer.verified,
        ),
        order_id=ticket.order_id,
        messages=await _conversation(ticket, AGENT_FILES, agents=True),
        explanation=ticket.explanation,
    )


async def ticket_status(number: str) -> TicketStatus | None:
    """What the customer may see of a ticket, by its number or a follow-up's."""
    ticket = await _resolve(number)
    if ticket is None:
        return None
    return TicketStatus(
        number=ticket.number,
        status=ticket.status,
        subject=ticket.subject,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        messages=[
            MessageOut.model_validate(m, from_attributes=True)
            for m in await _conversation(ticket, customer_files(ticket.number), agents=False)
        ],
    )


async def ticket_counts() -> dict[tuple[str, str], int]:
    """How many tickets there are per (channel, status), for metrics."""
    rows = (
        await Ticket.all()
        .annotate(n=Count("id"))
        .group_by("channel", "status")
        .values("channel", "status", "n")
    )
    return {(r["channel"], r["status"]): r["n"] for r in rows}
