"""Serving a ticket's files: to agents under the read scope, to customers by their ticket.

A file outside the caller's reach looks exactly like a missing one (None), as tickets do.
Thumbnails are made on the first request for one and kept, so each is made once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from intake_hub.attachments import AttachmentStore, MissingAttachment, thumbnail
from intake_hub.storage import attachments as rows
from intake_hub.storage.attachments import AttachmentRow
from intake_hub.storage.models import Ticket
from intake_hub.tickets.read import find_ticket, visible
from intake_hub.tickets.views import Principal

log = logging.getLogger(__name__)

# Shown in the browser rather than downloaded: types a browser renders without running
# anything of the sender's (served with nosniff and a sandboxing CSP all the same).
INLINE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "application/pdf",
        "text/plain",
    }
)


@dataclass(frozen=True)
class AttachmentFile:
    """The bytes of one stored file and how to present them."""

    name: str
    content_type: str
    data: bytes

    @property
    def inline(self) -> bool:
        """Whether a browser may show it in place (else it is only a download)."""
        return self.content_type in INLINE_TYPES


async def for_agent(
    store: AttachmentStore, attachment_id: UUID, who: Principal, *, thumb: bool = False
) -> AttachmentFile | None:
    """A file of a ticket `who` may read; None if missing, not stored yet or out of scope."""
    row = await rows.get(attachment_id)
    if row is None:
        return None
    scope = await visible(who)
    if scope is not None and not await Ticket.filter(scope, id=row.ticket_id).exists():
        return None
    return await _file(store, row, thumb)


async def for_customer(
    store: AttachmentStore, number: str, attachment_id: UUID, *, thumb: bool = False
) -> AttachmentFile | None:
    """A file of ticket `number` (whose code the caller proved); None if not one of its own."""
    ticket = await find_ticket(number)
    row = await rows.get(attachment_id)
    if ticket is None or row is None or row.ticket_id != ticket.id:
        return None
    return await _file(store, row, thumb)


async def _file(store: AttachmentStore, row: AttachmentRow, thumb: bool) -> AttachmentFile | None:
    if row.state != "stored" or row.digest is None:
        return None
    name, ctype = row.name or "attachment", row.content_type or "application/octet-stream"
    try:
        if not thumb:
            return AttachmentFile(name, ctype, await store.get(row.digest))
        if not ctype.startswith("image/"):
            return None
        data = await _thumbnail(store, row)
    except MissingAttachment:
        log.warning("attachment %s: its file %s is missing from the store", row.id, row.digest)
        return None
    png = data.startswith(b"\x89PNG")
    return AttachmentFile(f"thumb-{name}", "image/png" if png else "image/jpeg", data)


async def _thumbnail(store: AttachmentStore, row: AttachmentRow) -> bytes:
    if row.thumb_digest is not None:
        try:
            return await store.get(row.thumb_digest)
        except MissingAttachment:
            pass
    assert row.digest is not None
    # Pillow works for tens of milliseconds on a photo: off the event loop.
    small = await asyncio.to_thread(thumbnail, await store.get(row.digest))
    await rows.set_thumbnail(row.id, await store.put(small))
    return small


# A file is put in the store before its message is accepted, and the message may then wait
# in a spool (a broker outage) before its row is written: only files older than this, with
# no row, are orphans. Putting the same bytes again refreshes a file's time.
ORPHAN_GRACE = timedelta(days=3)
_SWEEP_BATCH = 500


async def sweep_orphans(store: AttachmentStore, grace: timedelta = ORPHAN_GRACE) -> int:
    """Delete stored files no attachment row refers to and older than `grace`; how many.

    Rows go with their ticket (a purged ticket cascades to its messages and their
    attachments), so this is also how a purged ticket's files leave the store.
    """
    before = datetime.now(UTC) - grace
    gone = 0
    batch: list[str] = []
    async for digest, stored_at in store.digests():
        if stored_at < before:
            batch.append(digest)
        if len(batch) >= _SWEEP_BATCH:
            gone += await _delete_unreferenced(store, batch)
            batch = []
    if batch:
        gone += await _delete_unreferenced(store, batch)
    if gone:
        log.info("attachments: removed %d files no message refers to", gone)
    return gone


async def _delete_unreferenced(store: AttachmentStore, digests: list[str]) -> int:
    kept = await rows.referenced(digests)
    orphans = [d for d in digests if d not in kept]
    for digest in orphans:
        await store.delete(digest)
    return len(orphans)
