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
    ticket: str = ""
    attempt: int = 0
    claimed_at: datetime | None = None

    def stale(self, grace_s: float) -> bool:
        """Still unanswered longer than `grace_s` after its holder claimed it."""
        if self.answer is not None or self.claimed_at is None:
            return False
        return (datetime.now(UTC) - self.claimed_at).total_seconds() > grace_s


def _held(row: WeChatDelivery) -> Claim:
    return Claim(
        first=False,
        # asyncpg hands back its own UUID type, which the bus codec cannot serialise.
        envelope_id=UUID(str(row.envelope_id)),
        answer=row.answer,
        ticket=row.ticket,
        attempt=row.attempt,
        claimed_at=row.claimed_at or row.created_at,
    )


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
            return _held(row)
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
    return _held(row)


async def take_over(instance: str, key: str, attempt: int) -> bool:
    """Win the unanswered claim held as `attempt`; of any number of callers one wins."""
    won = await WeChatDelivery.filter(
        instance=instance, msg_key=key, answer__isnull=True, attempt=attempt
    ).update(attempt=attempt + 1, claimed_at=datetime.now(UTC))
    return bool(won)


async def release(instance: str, key: str, attempt: int = 0) -> None:
    """Forget an unanswered claim, held as `attempt`, whose envelope never reached the bus."""
    # A holder that lost its claim to a takeover must not delete the new holder's row.
    await WeChatDelivery.filter(
        instance=instance, msg_key=key, answer__isnull=True, attempt=attempt
    ).delete()


async def prune(instance: str, before: datetime, batch: int = 5000) -> int:
    """Forget deliveries made before `before`, in small batches; how many went.

    A delivery row only has to outlive WeChat's retries (three within about 15 s); after
    that the message's own unique key in persistence still refuses a copy.
    """
    gone = 0
    while True:
        ids = (
            await WeChatDelivery.filter(instance=instance, created_at__lt=before)
            .order_by("created_at")
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            return gone
        gone += await WeChatDelivery.filter(id__in=list(ids)).delete()
        if len(ids) < batch:
            return gone
