"""WeChat delivery records: insert-or-get by the (instance, msg_key) unique constraint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from intake_hub.connectors.wechat.stores import Claim
from intake_hub.storage.group import GroupCommit
from intake_hub.storage.models import WeChatDelivery
from intake_hub.storage.retention import prune_before
from intake_hub.storage.schema import columns
from intake_hub.storage.sql import Sql


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


@dataclass(frozen=True, slots=True)
class _Ask:
    instance: str
    key: str
    envelope_id: UUID
    ticket: str
    at: datetime


_COLS = ("instance", "msg_key", "envelope_id", "ticket", "created_at", "attempt")
_READ = "SELECT msg_key, envelope_id, answer, ticket, attempt, claimed_at, created_at "
_ANSWER = (
    "UPDATE wechat_delivery SET answer = ?, answered_at = ? "
    "WHERE instance = ? AND msg_key = ? AND answer IS NULL"
)


async def _claim_all(sql: Sql, asks: Sequence[_Ask]) -> list[Claim | None]:
    """Insert every delivery not seen before, then read back who holds each key.

    A caller whose envelope id is in the row came first. None: the row was released
    (deleted) between the insert that lost and the read, so the caller should ask again.
    """
    rows = sorted(asks, key=lambda a: (a.instance, a.key))
    await sql.insert(
        "wechat_delivery",
        columns(WeChatDelivery, *_COLS),
        [[a.instance, a.key, sql.uuid(a.envelope_id), a.ticket, sql.dt(a.at), 0] for a in rows],
    )
    held: dict[tuple[str, str], Claim] = {}
    for instance in sorted({a.instance for a in asks}):
        keys = sorted({a.key for a in asks if a.instance == instance})
        cond, args = sql.in_("msg_key", keys, "text")
        found = await sql.fetch(
            f"{_READ} FROM wechat_delivery WHERE instance = ? AND {cond}", [instance, *args]
        )
        for key, envelope_id, answer, ticket, attempt, claimed_at, created_at in found:
            held[(instance, key)] = Claim(
                first=False,
                envelope_id=sql.to_uuid(envelope_id),
                answer=answer,
                ticket=ticket,
                attempt=attempt,
                claimed_at=sql.to_dt(claimed_at or created_at),
            )
    out: list[Claim | None] = []
    for a in asks:
        claim = held.get((a.instance, a.key))
        if claim is not None and claim.envelope_id == a.envelope_id:
            claim = Claim(first=True, envelope_id=a.envelope_id, answer=None)
        out.append(claim)
    return out


async def _answer_all(sql: Sql, answers: Sequence[tuple[str, str, str]]) -> list[None]:
    now = sql.dt(datetime.now(UTC))
    await sql.executemany(
        _ANSWER, [[answer, now, instance, key] for instance, key, answer in sorted(answers)]
    )
    return [None] * len(answers)


class Deliveries:
    """One account's delivery records, written in group commits (a push costs no commit)."""

    def __init__(self) -> None:
        self._claims: GroupCommit[_Ask, Claim | None] = GroupCommit(_claim_all)
        self._answers: GroupCommit[tuple[str, str, str], None] = GroupCommit(_answer_all)

    async def claim(self, instance: str, key: str, envelope_id: UUID, ticket: str) -> Claim:
        """Record the first delivery of `key`, or return what the first one recorded."""
        # Two rounds: a first delivery whose emit failed deletes its row between our insert
        # losing and our read, and then this delivery may become the first.
        for _ in range(2):
            got = await self._claims(_Ask(instance, key, envelope_id, ticket, datetime.now(UTC)))
            if got is not None:
                return got
        raise RuntimeError(f"wechat delivery {instance}/{key}: claimed and released twice")

    async def record_answer(self, instance: str, key: str, answer: str) -> None:
        """Store the answer the first delivery sent; later calls never overwrite it."""
        await self._answers((instance, key, answer))

    async def lookup(self, instance: str, key: str) -> Claim | None:
        """The recorded delivery of `key` (answer None while it waits), None if there is none."""
        row = await WeChatDelivery.get_or_none(instance=instance, msg_key=key)
        if row is None:
            return None
        return _held(row)

    async def take_over(self, instance: str, key: str, attempt: int) -> bool:
        """Win the unanswered claim held as `attempt`; of any number of callers one wins."""
        won = await WeChatDelivery.filter(
            instance=instance, msg_key=key, answer__isnull=True, attempt=attempt
        ).update(attempt=attempt + 1, claimed_at=datetime.now(UTC))
        return bool(won)

    async def release(self, instance: str, key: str, attempt: int = 0) -> None:
        """Forget an unanswered claim, held as `attempt`, whose envelope never reached the bus."""
        # A holder that lost its claim to a takeover must not delete the new holder's row.
        await WeChatDelivery.filter(
            instance=instance, msg_key=key, answer__isnull=True, attempt=attempt
        ).delete()

    async def prune(self, instance: str, before: datetime, batch: int = 5000) -> int:
        """Forget deliveries made before `before`, in small batches; how many went.

        A delivery row only has to outlive WeChat's retries (three within about 15 s); after
        that the message's own unique key in persistence still refuses a copy.
        """
        return await prune_before(WeChatDelivery, instance, before, batch)
