"""What the responder needs from the store: open tickets and the automatic-reply counter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from intake_hub.status import OPEN_STATUSES, OpenTicket
from intake_hub.storage.group import GroupCommit
from intake_hub.storage.models import CustomerIdentity, Ticket
from intake_hub.storage.sql import Sql

MAX_OPEN = 20

# One row per customer, channel and window; the upsert increments and returns the counts
# in one statement, so two workers answering the same customer cannot both read "2 of 3".
_INTO = "INSERT INTO auto_reply_count (channel, customer_key, window_start, n) "
_ADD = (
    " ON CONFLICT (channel, customer_key, window_start) "
    "DO UPDATE SET n = auto_reply_count.n + excluded.n "
    "RETURNING channel, customer_key, window_start, n"
)
_PG_ROWS = "SELECT * FROM unnest(?::text[], ?::text[], ?::timestamptz[], ?::int[])"
# SQLite's limit on a statement's parameters is 32,766; a group is rarely over a few hundred.
_SQLITE_KEYS = 1000

_Key = tuple[str, str, datetime]


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
                status__in=OPEN_STATUSES,
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


@dataclass(frozen=True, slots=True)
class _Take:
    key: _Key
    limit: int


async def _take_all(sql: Sql, batch: Sequence[_Take]) -> list[bool]:
    """Add each key's count in one upsert returning the new total; callers get their places."""
    wanted = Counter(t.key for t in batch)
    # Sorted, so two processes take the row locks in the same order.
    keys = sorted(wanted)
    if sql.postgres:
        columns = [[k[0] for k in keys], [k[1] for k in keys], [sql.dt(k[2]) for k in keys]]
        arrays = [*columns, [wanted[k] for k in keys]]
        rows = await sql.fetch_alone(_INTO + _PG_ROWS + _ADD, arrays)
    else:
        rows = []
        for i in range(0, len(keys), _SQLITE_KEYS):
            chunk = keys[i : i + _SQLITE_KEYS]
            values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
            args = [a for k in chunk for a in (k[0], k[1], sql.dt(k[2]), wanted[k])]
            rows += await sql.fetch(f"{_INTO}VALUES {values}{_ADD}", args)
    # RETURNING names each row by its key, the window start as the driver gives it back.
    by_db = {(k[0], k[1], sql.dt(k[2])): k for k in keys}
    totals = {by_db[(ch, ck, ws)]: int(n) for ch, ck, ws, n in rows}
    place = {key: totals[key] - n for key, n in wanted.items()}
    allowed = []
    for t in batch:
        place[t.key] += 1
        allowed.append(place[t.key] <= t.limit)
    return allowed


class DbReplyGuard:
    """Counts automatic replies per customer and channel in fixed windows, atomically.

    Concurrent `take` calls share one transaction (one commit, one write lock on SQLite):
    per key the batch adds its count in one upsert that returns the new total, and the
    callers of that key get the places up to it in order.
    """

    def __init__(self) -> None:
        self._takes: GroupCommit[_Take, bool] = GroupCommit(_take_all)

    async def take(
        self, channel: str, customer_key: str, *, limit: int, window_minutes: int, now: datetime
    ) -> bool:
        """Count one automatic reply; False when it would be more than `limit` in the window."""
        key = (channel, customer_key, window_start(now, window_minutes))
        return await self._takes(_Take(key, limit))
