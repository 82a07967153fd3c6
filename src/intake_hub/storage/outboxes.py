"""What every channel's outbox table shares: late auto-replies resolved, due rows claimed.

A row is `waiting` for the text of an auto-reply that is not stored yet, then `pending`,
claimed as `sending` by one worker (the conditional update is the claim), and ends
`sent`, `failed` or `skipped`. The tables differ in what a send needs (an openid, an
address); these steps do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from tortoise.exceptions import IntegrityError

from intake_hub.storage.models import MailOutbound, Message, OutboxRow, WeChatOutbound

WAITING = "waiting"
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"

Row = TypeVar("Row", bound=OutboxRow)
# Every channel's outbox, by the channel whose customers it reaches.
TABLES: dict[str, type[OutboxRow]] = {"wechat": WeChatOutbound, "email": MailOutbound}


def reply_key(envelope_id: UUID) -> str:
    """The key of the auto-reply to one envelope (its reply message's dedupe key too)."""
    return f"reply:{envelope_id}"


async def insert(table: type[OutboxRow], values: dict[str, Any]) -> bool:
    """Queue a row; False when its key was queued before (the unique key decides)."""
    try:
        await table.create(**values)
    except IntegrityError:
        return False
    return True


@dataclass(frozen=True)
class Outcome:
    """How far one queued message got: its row's state, the last error, when it went."""

    channel: str
    status: str
    reason: str | None
    sent_at: datetime | None


async def outcomes(keys: Sequence[str]) -> dict[str, Outcome]:
    """The outbox state of each key queued on any channel (an outbound message's key)."""
    found: dict[str, Outcome] = {}
    if not keys:
        return found
    for channel, table in TABLES.items():
        rows = await table.filter(key__in=list(keys)).values("key", "status", "reason", "sent_at")
        for r in rows:
            found[r["key"]] = Outcome(channel, r["status"], r["reason"], r["sent_at"])
    return found


async def resolve_waiting(
    table: type[OutboxRow], instance: str, now: datetime, stale: dict[str, Any], limit: int = 200
) -> None:
    """Turn waiting auto-replies whose reply is now stored into pending sends.

    Stored without an answer, the responder chose silence (`no_reply`); never stored by
    the `stale` filter's time, it never will be (`never_stored`).
    """
    rows = await table.filter(instance=instance, status=WAITING).order_by("id").limit(limit)
    if not rows:
        return
    keys = [f"{kind}:{r.envelope_id}" for r in rows for kind in ("reply", "in")]
    found = {
        m["dedupe_key"]: m
        for m in await Message.filter(dedupe_key__in=keys).values("dedupe_key", "text", "ticket_id")
    }
    for row in rows:
        reply, inbound = found.get(f"reply:{row.envelope_id}"), found.get(f"in:{row.envelope_id}")
        waiting = table.filter(id=row.id, status=WAITING)
        if reply is not None:
            await waiting.update(
                status=PENDING, text=reply["text"], ticket_id=reply["ticket_id"], updated_at=now
            )
        elif inbound is not None:
            await waiting.update(status=SKIPPED, reason="no_reply", updated_at=now)
        else:
            await waiting.filter(**stale).update(
                status=SKIPPED, reason="never_stored", updated_at=now
            )


async def claim_due(table: type[Row], instance: str, now: datetime, limit: int = 50) -> list[Row]:
    """Claim pending rows that are due; each is returned (its `attempts` counted) to one caller."""
    rows = (
        await table.filter(instance=instance, status=PENDING, next_at__lte=now)
        .order_by("id")
        .limit(limit)
    )
    won: list[Row] = []
    for row in rows:
        claimed = await table.filter(id=row.id, status=PENDING).update(
            status=SENDING, attempts=row.attempts + 1, updated_at=now
        )
        if claimed == 1 and row.text is not None:
            row.attempts += 1
            won.append(row)
    return won
