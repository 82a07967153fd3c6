"""Attachment rows: written with their message, read for the ticket, fetched when pending.

The files themselves live in the attachment store (`intake_hub.attachments`) under their
SHA-256 digest; a row says which message carries which file, under what name and type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.expressions import Q

from intake_hub.envelope import AttachmentRef, Envelope
from intake_hub.storage.models import Attachment
from intake_hub.storage.rowid import row_id
from intake_hub.storage.sql import Sql

COLUMNS = (
    "id",
    "message_id",
    "position",
    "kind",
    "state",
    "source_ref",
    "digest",
    "name",
    "content_type",
    "size",
    "attempts",
    "next_at",
    "created_at",
)
# Refs a provider holds as a file to fetch later; their `ref` is the provider's media id
# (`remote`: the URL an app backend gave, fetched under its host allow-list).
FETCHED_KINDS = frozenset({"image", "voice", "video", "remote"})
# Kept as a reference only: there is no file to fetch.
LINK_KINDS = frozenset({"location", "link"})


def _state(ref: AttachmentRef) -> str | None:
    if ref.kind == "file":
        return "stored"
    if ref.kind in FETCHED_KINDS:
        return "pending"
    if ref.kind in LINK_KINDS:
        return "link"
    # A provider's extra (WeChat's PicUrl, a video's thumbnail) repeats a file we keep.
    return None


def rows(sql: Sql, env: Envelope, now: datetime) -> list[list[Any]]:
    """The attachment rows of an inbound envelope, with ids derived from it."""
    out: list[list[Any]] = []
    for position, ref in enumerate(env.attachments):
        state = _state(ref)
        if state is None:
            continue
        stored = state == "stored"
        out.append(
            [
                sql.uuid(row_id(env, f"attachment:{position}")),
                sql.uuid(env.id),
                position,
                ref.kind,
                state,
                None if stored else ref.ref[:500],
                ref.ref if stored else None,
                None if ref.name is None else ref.name[:200],
                ref.content_type,
                ref.size,
                0,
                sql.dt(now) if state == "pending" else None,
                sql.dt(now),
            ]
        )
    return out


@dataclass(frozen=True)
class AttachmentRow:
    """One attachment as the ticket service reads it, with the ticket it belongs to."""

    id: UUID
    message_id: UUID
    ticket_id: UUID
    kind: str
    state: str
    source_ref: str | None
    digest: str | None
    name: str | None
    content_type: str | None
    size: int | None
    thumb_digest: str | None


_FIELDS = (
    "id",
    "message_id",
    "message__ticket_id",
    "kind",
    "state",
    "source_ref",
    "digest",
    "name",
    "content_type",
    "size",
    "thumb_digest",
)


def _row(r: dict[str, Any]) -> AttachmentRow:
    return AttachmentRow(
        id=UUID(str(r["id"])),
        message_id=UUID(str(r["message_id"])),
        ticket_id=UUID(str(r["message__ticket_id"])),
        kind=r["kind"],
        state=r["state"],
        source_ref=r["source_ref"],
        digest=r["digest"],
        name=r["name"],
        content_type=r["content_type"],
        size=r["size"],
        thumb_digest=r["thumb_digest"],
    )


async def of_messages(message_ids: Sequence[UUID]) -> dict[UUID, list[AttachmentRow]]:
    """The attachments of each message, in the order they were sent."""
    if not message_ids:
        return {}
    found = (
        await Attachment.filter(message_id__in=list(message_ids))
        .order_by("message_id", "position")
        .values(*_FIELDS)
    )
    out: dict[UUID, list[AttachmentRow]] = {}
    for r in found:
        row = _row(r)
        out.setdefault(row.message_id, []).append(row)
    return out


async def get(attachment_id: UUID, ticket_ids: Q | None = None) -> AttachmentRow | None:
    """One attachment; None if missing or its ticket is outside `ticket_ids` (a filter)."""
    query = Attachment.filter(id=attachment_id)
    if ticket_ids is not None:
        query = query.filter(ticket_ids)
    found = await query.limit(1).values(*_FIELDS)
    return _row(found[0]) if found else None


async def set_thumbnail(attachment_id: UUID, digest: str) -> None:
    """Remember the thumbnail made for an image, so it is made once."""
    await Attachment.filter(id=attachment_id).update(thumb_digest=digest)


async def referenced(digests: Iterable[str]) -> set[str]:
    """Which of `digests` some attachment row still refers to (as its file or thumbnail)."""
    wanted = list(set(digests))
    if not wanted:
        return set()
    files = await Attachment.filter(digest__in=wanted).values_list("digest", flat=True)
    thumbs = await Attachment.filter(thumb_digest__in=wanted).values_list("thumb_digest", flat=True)
    return {str(d) for d in (*files, *thumbs) if d is not None}


@dataclass(frozen=True)
class Pending:
    """A provider's file waiting to be fetched, with the account it came through."""

    id: UUID
    kind: str
    source_ref: str
    name: str | None
    attempts: int
    source: str
    received_at: datetime


async def due(source: str, now: datetime, limit: int = 20) -> list[Pending]:
    """Pending fetches of tickets from `source` (e.g. `wechat/shop`) whose time has come."""
    found = (
        await Attachment.filter(state="pending", next_at__lte=now)
        .filter(message__ticket__source=source)
        .order_by("next_at")
        .limit(limit)
        .values(
            "id",
            "kind",
            "source_ref",
            "name",
            "attempts",
            "message__ticket__source",
            "message__created_at",
        )
    )
    return [
        Pending(
            id=UUID(str(r["id"])),
            kind=r["kind"],
            source_ref=r["source_ref"] or "",
            name=r["name"],
            attempts=r["attempts"],
            source=r["message__ticket__source"] or "",
            received_at=r["message__created_at"],
        )
        for r in found
    ]


async def lease(attachment_id: UUID, attempts: int, hold: timedelta) -> bool:
    """Take a pending fetch for `hold` (another process skips it meanwhile); False if taken."""
    until = datetime.now(UTC) + hold
    won = await Attachment.filter(id=attachment_id, state="pending", attempts=attempts).update(
        attempts=attempts + 1, next_at=until
    )
    return bool(won)


async def fetched(
    attachment_id: UUID, digest: str, name: str, content_type: str, size: int
) -> None:
    """A pending file is in the store now."""
    await Attachment.filter(id=attachment_id, state="pending").update(
        state="stored",
        digest=digest,
        name=name[:200],
        content_type=content_type,
        size=size,
        next_at=None,
        error=None,
    )


async def retry_at(attachment_id: UUID, at: datetime, error: str) -> None:
    """A fetch failed for now: try again at `at`."""
    await Attachment.filter(id=attachment_id, state="pending").update(next_at=at, error=error[:200])


async def gave_up(attachment_id: UUID, error: str) -> None:
    """A fetch can never succeed (expired media, refused content): say why and stop."""
    await Attachment.filter(id=attachment_id, state="pending").update(
        state="failed", next_at=None, error=error[:200]
    )
