"""WeChat delivery records: insert-or-get by the (instance, msg_key) unique constraint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from tortoise.exceptions import DoesNotExist, IntegrityError

from intake_hub.storage.models import WeChatDelivery


@dataclass(frozen=True)
class Claim:
    """Whether this delivery came first, and the answer recorded so far (None: not yet)."""

    first: bool
    envelope_id: UUID
    answer: str | None


async def claim(instance: str, key: str, envelope_id: UUID, ticket: str) -> Claim:
    """Record the first delivery of `key`, or return what the first one recorded."""
    # Two attempts: a first delivery whose emit failed deletes its row between our insert
    # failing and our read, and then this delivery may become the first.
    for _ in range(2):
        try:
            await WeChatDelivery.create(
                instance=instance,
                msg_key=key,
                envelope_id=envelope_id,
                ticket=ticket,
                created_at=datetime.now(UTC),
            )
        except IntegrityError:
            try:
                row = await WeChatDelivery.get(instance=instance, msg_key=key)
            except DoesNotExist:
                continue
            return Claim(first=False, envelope_id=row.envelope_id, answer=row.answer)
        return Claim(first=True, envelope_id=envelope_id, answer=None)
    raise RuntimeError(f"wechat delivery {instance}/{key}: claimed and released twice")


async def record_answer(instance: str, key: str, answer: str) -> None:
    """Store the answer the first delivery sent; later calls never overwrite it."""
    await WeChatDelivery.filter(instance=instance, msg_key=key, answer__isnull=True).update(
        answer=answer, answered_at=datetime.now(UTC)
    )


async def lookup(instance: str, key: str) -> Claim | None:
    """The recorded delivery of `key` (answer None while it waits), None if there is none."""
    row = await WeChatDelivery.get_or_none(instance=instance, msg_key=key)
    if row is None:
        return None
    return Claim(first=False, envelope_id=row.envelope_id, answer=row.answer)


async def release(instance: str, key: str) -> None:
    """Forget an unanswered first delivery whose envelope never reached the bus."""
    await WeChatDelivery.filter(instance=instance, msg_key=key, answer__isnull=True).delete()
