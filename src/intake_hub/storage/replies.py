"""What the responder needs from the store: open tickets and the automatic-reply counter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from intake_hub.stages.responder import OpenTicket
from intake_hub.storage import db
from intake_hub.storage.models import CustomerIdentity, Ticket
from intake_hub.storage.sql import transaction

OPEN = ("received", "in_progress")
MAX_OPEN = 20

# One row per customer, channel and window; the upsert increments and returns the count in
# one statement, so two workers answering the same customer cannot both read "2 of 3".
_TAKE = (
    "INSERT INTO auto_reply_count (channel, customer_key, window_start, n) VALUES (?, ?, ?, 1) "
    "ON CONFLICT (channel, customer_key, window_start) "
    "DO UPDATE SET n = auto_reply_count.n + 1 RETURNING n"
)


class DbTicketLookup:
    """The customer's open tickets on a channel, from the ticket store."""

    async def open_tickets(self, channel: str, customer_key: str) -> Sequence[OpenTicket]:
        """Open tickets of the customer known as `customer_key` on `channel`, newest first."""
        identity = await CustomerIdentity.get_or_none(channel=channel, key=customer_key)
        if identity is None:
            return []
        rows = (
            await Ticket.filter(
                customer_id=identity.customer_id,  # type: ignore[attr-defined]
                channel=channel,
                status__in=OPEN,
            )
            .order_by("-updated_at")
            .limit(MAX_OPEN)
            .values("number", "status", "updated_at")
        )
        return [OpenTicket(r["number"], r["status"], r["updated_at"]) for r in rows]


def window_start(now: datetime, minutes: int) -> datetime:
    """The start of the fixed `minutes`-long window holding `now` (windows start at epoch)."""
    size = minutes * 60
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % size, tz=UTC)


class DbReplyGuard:
    """Counts automatic replies per customer and channel in fixed windows, atomically."""

    async def take(
        self, channel: str, customer_key: str, *, limit: int, window_minutes: int, now: datetime
    ) -> bool:
        """Count one automatic reply; False when it would be more than `limit` in the window."""
        start = window_start(now, window_minutes)
        async with transaction(db.connection()) as sql:
            rows = await sql.fetch(_TAKE, (channel, customer_key, sql.dt(start)))
        return int(rows[0][0]) <= limit
