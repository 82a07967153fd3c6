"""How far an IMAP mailbox was read: the last UID taken, valid only under its UIDVALIDITY.

One row per (instance, mailbox). Under one UIDVALIDITY the position only moves forward:
a late or repeated save of an older UID changes nothing, so mail can be skipped only by
a bug here, never by a race. A new UIDVALIDITY replaces the row, whatever its number
(RFC 3501 wants it larger, but a moved or restored mailbox may not keep to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from intake_hub.storage.models import ImapMailbox


@dataclass(frozen=True)
class Position:
    """The last UID taken from a mailbox and the UIDVALIDITY it belongs to."""

    uidvalidity: int
    last_uid: int


async def position(instance: str, mailbox: str) -> Position | None:
    """Where reading `mailbox` of `instance` stands; None before its first mail."""
    row = await ImapMailbox.get_or_none(instance=instance, mailbox=mailbox)
    return None if row is None else Position(row.uidvalidity, row.last_uid)


async def _move(instance: str, mailbox: str, at: Position, now: datetime) -> bool:
    """Move an existing row to `at` if that is forward or a new validity; False if no row."""
    rows = ImapMailbox.filter(instance=instance, mailbox=mailbox)
    forward = await rows.filter(uidvalidity=at.uidvalidity, last_uid__lt=at.last_uid).update(
        last_uid=at.last_uid, updated_at=now
    )
    if forward:
        return True
    renewed = await rows.exclude(uidvalidity=at.uidvalidity).update(
        uidvalidity=at.uidvalidity, last_uid=at.last_uid, updated_at=now
    )
    if renewed:
        return True
    # Nothing changed: either the row is already at or past `at`, or there is no row.
    return await rows.exists()


async def save(instance: str, mailbox: str, at: Position, now: datetime | None = None) -> None:
    """Record that every UID up to `at.last_uid` was taken; never moves backwards."""
    now = now or datetime.now(UTC)
    if await _move(instance, mailbox, at, now):
        return
    try:
        await ImapMailbox.create(
            instance=instance,
            mailbox=mailbox,
            uidvalidity=at.uidvalidity,
            last_uid=at.last_uid,
            updated_at=now,
        )
    except IntegrityError:
        # Another reader made the row between our update and insert: move it instead.
        await _move(instance, mailbox, at, now)
