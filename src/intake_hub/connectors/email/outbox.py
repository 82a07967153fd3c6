"""Mail to send, one row each: queued in the caller's transaction, claimed before sending.

The unique `key` makes a mail exist once however often it is queued (a redelivered
envelope, a retried agent request); the `pending -> sending` update is the claim, so one
worker sends it. A worker that dies mid-send leaves the row `sending`: `reap` queues it
again with the same Message-ID, which receivers fold into the first copy if the relay had
taken it (a lost reply is worse than a folded duplicate).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from tortoise.exceptions import IntegrityError

from intake_hub.storage import outboxes
from intake_hub.storage.models import Event, MailAddress, MailOutbound, Message, Ticket
from intake_hub.storage.outboxes import PENDING, SENDING, SENT, WAITING

BOUNCED = "bounced"
# An auto-reply whose message is not stored by then never will be (the spool's limit).
NEVER_STORED = timedelta(days=3)


@dataclass(frozen=True)
class Job:
    """One claimed mail."""

    id: int
    key: str
    to: str
    number: str
    ticket_id: UUID | None
    envelope_id: UUID | None
    text: str
    message_id: str
    automatic: bool
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Thread:
    """What a mail about a ticket needs to thread in the customer's client."""

    subject: str | None
    first_text: str
    in_reply_to: str | None
    references: tuple[str, ...]


async def expect_reply(
    instance: str, envelope_id: UUID, to: str, number: str, message_id: str, now: datetime
) -> bool:
    """Note that the auto-reply to this envelope goes out once stored; False if noted before."""
    return await outboxes.insert(
        MailOutbound,
        {
            "key": outboxes.reply_key(envelope_id),
            "instance": instance,
            "to_address": to,
            "ticket": number,
            "envelope_id": envelope_id,
            "message_id": message_id,
            "status": WAITING,
            "automatic": True,
            "next_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


async def enqueue(
    key: str,
    instance: str,
    to: str,
    number: str,
    ticket_id: UUID,
    text: str,
    message_id: str,
    *,
    automatic: bool,
    now: datetime,
) -> bool:
    """Queue a mail under a stable `key` in the current transaction; False if queued before."""
    return await outboxes.insert(
        MailOutbound,
        {
            "key": key,
            "instance": instance,
            "to_address": to,
            "ticket": number,
            "ticket_id": ticket_id,
            "text": text,
            "message_id": message_id,
            "status": PENDING,
            "automatic": automatic,
            "next_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


async def queued(key: str) -> bool:
    """Whether a mail with `key` was ever queued."""
    return await MailOutbound.filter(key=key).exists()


async def get(key: str) -> MailOutbound | None:
    """The row with this key (for inspection and tests)."""
    return await MailOutbound.get_or_none(key=key)


async def resolve_waiting(instance: str, now: datetime, limit: int = 200) -> None:
    """Turn auto-replies whose reply is now stored into pending mail; skip the silent ones."""
    await outboxes.resolve_waiting(
        MailOutbound, instance, now, {"created_at__lt": now - NEVER_STORED}, limit
    )


async def claim_due(instance: str, now: datetime, limit: int = 50) -> list[Job]:
    """Claim pending mail that is due; each row is returned to exactly one caller."""
    return [
        Job(
            row.id,
            row.key,
            row.to_address,
            row.ticket,
            row.ticket_id,
            row.envelope_id,
            row.text or "",
            row.message_id,
            row.automatic,
            row.attempts,
            row.created_at,
        )
        for row in await outboxes.claim_due(MailOutbound, instance, now, limit)
    ]


def _bare(external_id: str | None) -> str | None:
    """The Message-ID inside a stored `<instance>:<message-id>`; None for hashed ones."""
    if not external_id:
        return None
    message_id = external_id.partition(":")[2]
    return None if message_id.startswith("sha256-") else message_id


async def thread(job: Job) -> Thread:
    """The ticket's subject and the Message-IDs this mail answers and continues."""
    ticket = await Ticket.get_or_none(id=job.ticket_id) if job.ticket_id else None
    inbound = (
        await Message.filter(ticket_id=job.ticket_id, direction="in", channel="email")
        .order_by("created_at")
        .values("id", "external_id", "created_at", "text")
        if job.ticket_id
        else []
    )
    ours = (
        await MailOutbound.filter(ticket_id=job.ticket_id, status__in=(SENT, BOUNCED))
        .exclude(id=job.id)
        .values("message_id", "sent_at")
        if job.ticket_id
        else []
    )
    dated = [(m["created_at"], _bare(m["external_id"])) for m in inbound]
    dated += [(m["sent_at"], m["message_id"]) for m in ours if m["sent_at"] is not None]
    parent = None
    if job.envelope_id is not None:
        parent = next(
            (_bare(m["external_id"]) for m in inbound if m["id"] == job.envelope_id), None
        )
    elif inbound:
        parent = _bare(inbound[-1]["external_id"])
    chain = [mid for _, mid in sorted(dated, key=lambda d: d[0]) if mid and mid != parent]
    if parent:
        chain.append(parent)
    return Thread(
        subject=ticket.subject if ticket is not None else None,
        first_text=inbound[0]["text"] if inbound else "",
        in_reply_to=parent,
        references=tuple(chain),
    )


async def finish(
    job: Job,
    status: str,
    now: datetime,
    *,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record how a claimed send ended; `retry_at` puts it back in the queue for later."""
    claimed = MailOutbound.filter(id=job.id, status=SENDING)
    if retry_at is not None:
        await claimed.update(status=PENDING, reason=error, next_at=retry_at, updated_at=now)
        return
    sent_at = now if status == SENT else None
    await claimed.update(status=status, reason=error, updated_at=now, sent_at=sent_at)
    kind = "mail_sent" if status == SENT else "mail_not_sent"
    await _event(
        job.ticket_id, kind, job.key, now, {"key": job.key, "status": status, "error": error}
    )


async def _event(
    ticket_id: UUID | None, kind: str, key: str, now: datetime, data: dict[str, Any]
) -> None:
    if ticket_id is None:
        return
    with contextlib.suppress(IntegrityError):
        await Event.create(
            id=uuid5(NAMESPACE_URL, f"intake-hub:mail:{key}:{kind}"),
            ticket_id=ticket_id,
            kind=kind,
            actor="system",
            data=data,
            created_at=now,
            dedupe_key=f"mail:{key}:{kind}"[:80],
        )


async def reap(instance: str, now: datetime, stale_s: float) -> int:
    """Queue again the sends of a worker that died mid-send (same Message-ID)."""
    return await MailOutbound.filter(
        instance=instance, status=SENDING, updated_at__lt=now - timedelta(seconds=stale_s)
    ).update(status=PENDING, reason="interrupted: sent again", next_at=now, updated_at=now)


async def ticket_of_reference(instance: str, ids: Sequence[str]) -> str | None:
    """The ticket of the first of `ids` that is a Message-ID this instance sent."""
    if not ids:
        return None
    rows = await MailOutbound.filter(instance=instance, message_id__in=list(ids)).values(
        "message_id", "ticket"
    )
    by_id = {r["message_id"]: r["ticket"] for r in rows}
    return next((by_id[i] for i in ids if i in by_id), None)


async def bounced(
    instance: str, message_id: str, recipients: Sequence[str], reason: str, now: datetime
) -> str | None:
    """Mark our mail `message_id` bounced and its failed recipients failing; its ticket."""
    row = await MailOutbound.get_or_none(instance=instance, message_id=message_id)
    if row is None:
        return None
    await MailOutbound.filter(id=row.id, status=SENT).update(
        status=BOUNCED, reason=reason[:200], updated_at=now
    )
    for address in {r.lower() for r in recipients} or {row.to_address}:
        await MailAddress.update_or_create(
            defaults={"failing_since": now, "reason": reason[:200], "updated_at": now},
            address=address,
        )
    data = {"key": row.key, "to": sorted(recipients) or [row.to_address], "reason": reason}
    await _event(row.ticket_id, "mail_bounced", row.key, now, data)
    return row.ticket


async def failing(address: str) -> bool:
    """Whether mail to `address` bounced and nothing has come from it since."""
    return await MailAddress.filter(address=address.lower(), failing_since__isnull=False).exists()


async def reachable(address: str, now: datetime) -> None:
    """A person wrote from `address`: it works again."""
    marked = MailAddress.filter(address=address.lower(), failing_since__isnull=False)
    # Read first: nearly every address is fine, and a read never waits for SQLite's writer.
    if await marked.exists():
        await marked.update(failing_since=None, updated_at=now)
