"""The outbox of events to app backends: rows written beside each change, read by the sender.

Only tickets that came through an app's webhook (`source` `webhook/<instance>`) have
events. A row's `webhook_id` is derived from the ids the change already has (the
envelope, the agent's message, the audit event), so a redelivered envelope or a retried
request inserts the same id and the unique key keeps one row. The sender leases a row by
moving its `next_at` past the attempt (an optimistic update on `attempts`): a process
that dies mid-send leaves it due again once the lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from tortoise.functions import Min

from intake_hub.storage.models import AppEvent
from intake_hub.storage.sql import Sql

PREFIX = "webhook/"
CREATED, REPLIED = "ticket.created", "ticket.replied"
ASSIGNED, STATUS_CHANGED = "ticket.assigned", "ticket.status_changed"
TYPES = (CREATED, REPLIED, ASSIGNED, STATUS_CHANGED)
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)
COLUMNS = (
    "webhook_id",
    "source",
    "ticket_id",
    "number",
    "type",
    "payload",
    "status",
    "attempts",
    "next_at",
    "created_at",
)
_IDS = UUID("3b8e0c1e-5a7f-4f0e-9a61-2d4b8c7e9f10")


def wanted(source: str | None) -> bool:
    """Whether tickets from `source` report their changes to an app (an app's webhook)."""
    return source is not None and source.startswith(PREFIX)


def webhook_id(key: str) -> str:
    """The stable `webhook-id` of the event of one change (`created:<envelope id>`, ...)."""
    return f"evt_{uuid5(_IDS, key).hex}"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One change of one ticket, as the app hears of it."""

    key: str  # the change's own id, e.g. `reply:<envelope id>`: the webhook id's seed
    source: str
    ticket_id: UUID
    number: str
    type: str
    status: str
    at: datetime
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The body posted to the app: `{type, timestamp, data: {ticket, status, ...}}`."""
        data = {"ticket": self.number, "status": self.status, **self.data}
        return {"type": self.type, "timestamp": self.at.isoformat(), "data": data}


def row(sql: Sql, event: NewEvent) -> list[Any]:
    """The event as a row of `COLUMNS`, for a set-based insert in the caller's transaction."""
    at = sql.dt(event.at)
    return [
        webhook_id(event.key),
        event.source,
        sql.uuid(event.ticket_id),
        event.number,
        event.type,
        sql.json(event.payload()),
        PENDING,
        0,
        at,
        at,
    ]


async def add(event: NewEvent) -> None:
    """Insert the event in the current transaction (a clash on its id aborts the change)."""
    await AppEvent.create(
        webhook_id=webhook_id(event.key),
        source=event.source,
        ticket_id=event.ticket_id,
        number=event.number,
        type=event.type,
        payload=event.payload(),
        status=PENDING,
        attempts=0,
        next_at=event.at,
        created_at=event.at,
    )


@dataclass(frozen=True, slots=True)
class Due:
    """A leased event: what to post, and the `attempts` value that proves the lease."""

    id: int
    webhook_id: str
    ticket_id: UUID
    number: str
    payload: dict[str, Any]
    attempts: int
    since: datetime  # the retry horizon counts from here


async def due(source: str, now: datetime, limit: int) -> list[AppEvent]:
    """Each ticket's oldest undecided event, if it is due: a ticket's events go in order."""
    heads = (
        AppEvent.filter(source=source, status=PENDING)
        .group_by("ticket_id")
        .annotate(first=Min("id"))
        .values_list("first", flat=True)
    )
    firsts = [int(str(i)) for i in await heads]
    if not firsts:
        return []
    return (
        await AppEvent.filter(id__in=firsts, next_at__lte=now)
        .order_by("next_at", "id")
        .limit(limit)
    )


async def lease(row: AppEvent, until: datetime) -> Due | None:
    """Take the event for one attempt until `until`; None when another process took it."""
    won = await AppEvent.filter(id=row.id, status=PENDING, attempts=row.attempts).update(
        attempts=row.attempts + 1, next_at=until
    )
    if won != 1:
        return None
    return Due(
        id=row.id,
        webhook_id=row.webhook_id,
        ticket_id=row.ticket_id,  # type: ignore[attr-defined]
        number=row.number,
        payload=row.payload,
        attempts=row.attempts + 1,
        since=row.redelivered_at or row.created_at,
    )


async def finish(
    job: Due,
    now: datetime,
    *,
    code: int | None,
    error: str | None,
    latency_ms: int,
    retry_at: datetime | None = None,
) -> None:
    """Record an attempt: delivered on a 2xx, else pending until `retry_at`, else dead."""
    status = DELIVERED if error is None else (PENDING if retry_at is not None else DEAD)
    changes: dict[str, Any] = {
        "status": status,
        "last_status": code,
        "last_error": None if error is None else error[:200],
        "last_latency_ms": latency_ms,
    }
    if status == DELIVERED:
        changes["delivered_at"] = now
    if retry_at is not None:
        changes["next_at"] = retry_at
    # Only while the lease is ours: a holder whose lease ran out records nothing.
    await AppEvent.filter(id=job.id, status=PENDING, attempts=job.attempts).update(**changes)


async def listing(
    status: str | None = None, ticket: str | None = None, limit: int = 100
) -> list[AppEvent]:
    """The delivery log, newest first: of one status and/or one ticket number if given."""
    query = AppEvent.all()
    if status is not None:
        query = query.filter(status=status)
    if ticket is not None:
        query = query.filter(number=ticket)
    return await query.order_by("-id").limit(limit)


async def redeliver(ids: list[str], now: datetime) -> list[str]:
    """Put events back in the queue, due now, with a fresh horizon; returns the ids found."""
    found = await AppEvent.filter(webhook_id__in=ids).values_list("webhook_id", flat=True)
    await AppEvent.filter(webhook_id__in=ids).update(
        status=PENDING, next_at=now, redelivered_at=now, delivered_at=None
    )
    return [str(i) for i in found]


async def prune(source: str, before: datetime, batch: int = 5000) -> int:
    """Forget `source`'s delivered and dead events made before `before`, oldest first.

    Pending ones stay whatever their age: they are still owed to the app.
    """
    gone = 0
    while True:
        ids = (
            await AppEvent.filter(
                source=source, status__in=(DELIVERED, DEAD), created_at__lt=before
            )
            .order_by("id")
            .limit(batch)
            .values_list("id", flat=True)
        )
        if ids:
            gone += await AppEvent.filter(id__in=list(ids)).delete()
        if len(ids) < batch:
            return gone
