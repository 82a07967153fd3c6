"""WeChat customer-service messages to send: one row per message, claimed before sending.

The row's unique `key` makes the message exist once however often it is enqueued (a
redelivered envelope, a second worker); the `pending -> sending` update is the claim, so
only one worker ever sends it. A worker that dies after the claim leaves the row
`sending`: whether WeChat got it is unknown, and `reap` records that instead of sending
a second time.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from tortoise.exceptions import IntegrityError

from intake_hub.connectors.wechat.stores import WINDOW, Job
from intake_hub.storage import outboxes
from intake_hub.storage.models import CustomerIdentity, Event, Message, WeChatOutbound
from intake_hub.storage.outboxes import FAILED, PENDING, SENDING, SENT, WAITING


async def expect_reply(
    instance: str, envelope_id: UUID, openid: str, ticket: str, received_at: datetime, now: datetime
) -> bool:
    """Note that the auto-reply to this envelope must go out later; False if already noted."""
    return await outboxes.insert(
        WeChatOutbound,
        {
            "key": outboxes.reply_key(envelope_id),
            "instance": instance,
            "openid": openid,
            "ticket": ticket,
            "envelope_id": envelope_id,
            "status": WAITING,
            "window_from": received_at,
            "next_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


async def enqueue(
    key: str,
    instance: str,
    openid: str,
    ticket: str,
    text: str,
    window_from: datetime,
    now: datetime,
    ticket_id: UUID | None = None,
) -> bool:
    """Queue a text for the customer under a stable `key`; False if that key was queued before."""
    return await outboxes.insert(
        WeChatOutbound,
        {
            "key": key,
            "instance": instance,
            "openid": openid,
            "ticket": ticket,
            "ticket_id": ticket_id,
            "text": text,
            "status": PENDING,
            "window_from": window_from,
            "next_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


async def resolve_waiting(instance: str, now: datetime, limit: int = 200) -> None:
    """Turn waiting auto-replies whose reply is now stored into pending sends."""
    await outboxes.resolve_waiting(
        WeChatOutbound, instance, now, {"window_from__lt": now - WINDOW}, limit
    )


async def claim_due(instance: str, now: datetime, limit: int = 50) -> list[Job]:
    """Claim pending messages that are due; each is returned to exactly one caller."""
    return [
        Job(
            row.id,
            row.key,
            row.openid,
            row.ticket,
            row.ticket_id,
            row.text or "",
            row.window_from,
            row.attempts,
        )
        for row in await outboxes.claim_due(WeChatOutbound, instance, now, limit)
    ]


async def last_inbound(openid: str, since: datetime) -> datetime:
    """When the customer last wrote on WeChat, at least `since` (opens the 48 h window)."""
    customer = await CustomerIdentity.filter(channel="wechat", key=openid).values_list(
        "customer_id", flat=True
    )
    if not customer:
        return since
    latest = (
        await Message.filter(direction="in", channel="wechat", ticket__customer_id=customer[0])
        .order_by("-created_at")
        .limit(1)
        .values_list("created_at", flat=True)
    )
    return max(since, latest[0]) if latest and isinstance(latest[0], datetime) else since


async def unsubscribed(openid: str) -> bool:
    """Whether the customer unfollowed the account: then nothing more may be sent to them."""
    marked = await CustomerIdentity.filter(
        channel="wechat", key=openid, unsubscribed_at__isnull=False
    ).values_list("customer_id", "unsubscribed_at")
    if not marked:
        return False
    customer_id, since = marked[0]
    # Only a follower can write: a message after the mark means a re-follow whose event
    # never reached us. It errs towards sending, which at worst costs a refused call.
    wrote = await Message.filter(
        direction="in", channel="wechat", ticket__customer_id=customer_id, created_at__gt=since
    ).exists()
    return not wrote


async def finish(
    job: Job,
    status: str,
    now: datetime,
    *,
    code: int | None = None,
    reason: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record how a claimed send ended; `retry_at` puts it back in the queue for later."""
    claimed = WeChatOutbound.filter(id=job.id, status=SENDING)
    if retry_at is not None:
        await claimed.update(
            status=PENDING, error_code=code, reason=reason, next_at=retry_at, updated_at=now
        )
        return
    await claimed.update(
        status=status,
        error_code=code,
        reason=reason,
        updated_at=now,
        sent_at=now if status == SENT else None,
    )
    if job.ticket_id is not None:
        kind = "wechat_sent" if status == SENT else "wechat_not_sent"
        data = {"key": job.key, "status": status, "code": code, "reason": reason}
        with contextlib.suppress(IntegrityError):
            await Event.create(
                id=_event_id(job),
                ticket_id=job.ticket_id,
                kind=kind,
                actor="system",
                data=data,
                created_at=now,
                dedupe_key=f"{job.key}:outcome"[:80],
            )


def _event_id(job: Job) -> UUID:
    return uuid5(NAMESPACE_URL, f"intake-hub:wechat-outbound:{job.key}")


async def reap(instance: str, now: datetime, stale_s: float) -> int:
    """Record sends claimed by a worker that never finished as failed, without resending."""
    return await WeChatOutbound.filter(
        instance=instance, status=SENDING, updated_at__lt=now - timedelta(seconds=stale_s)
    ).update(status=FAILED, reason="interrupted: delivery unknown", updated_at=now)


async def get(key: str) -> WeChatOutbound | None:
    """The outbound row with this key (for inspection and tests)."""
    return await WeChatOutbound.get_or_none(key=key)


async def queued(key: str) -> bool:
    """Whether a message with `key` was ever queued (a retried request answers the same)."""
    return await WeChatOutbound.filter(key=key).exists()
