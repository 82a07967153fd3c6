"""Idempotency keys of web messages: insert-or-compare by (instance, key).

The first request with a key stores the ticket number it drew and its body's hash; a
later one with the same key gets that number back, and the caller compares the hashes.
Rows are written in group commits, as WeChat's nonces are, so a burst costs one commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from intake_hub.storage.group import GroupCommit
from intake_hub.storage.models import WebIdempotency
from intake_hub.storage.retention import prune_before
from intake_hub.storage.schema import columns
from intake_hub.storage.sql import Sql

_COLS = ("instance", "idem_key", "body_hash", "ticket", "created_at")


@dataclass(frozen=True, slots=True)
class Claim:
    """What a key stands for: the first request's ticket number and body hash."""

    ticket: str
    body_hash: str


@dataclass(frozen=True, slots=True)
class _Ask:
    instance: str
    key: str
    claim: Claim
    at: datetime


async def _claim_all(sql: Sql, asks: Sequence[_Ask]) -> list[Claim | None]:
    """Insert every (instance, key) not seen before, then read back who holds each."""
    rows = sorted(asks, key=lambda a: (a.instance, a.key))
    await sql.insert(
        "web_idempotency",
        columns(WebIdempotency, *_COLS),
        [[a.instance, a.key, a.claim.body_hash, a.claim.ticket, sql.dt(a.at)] for a in rows],
    )
    held: dict[tuple[str, str], Claim] = {}
    for instance in sorted({a.instance for a in asks}):
        keys = sorted({a.key for a in asks if a.instance == instance})
        cond, args = sql.in_("idem_key", keys, "text")
        found = await sql.fetch(
            "SELECT idem_key, ticket, body_hash FROM web_idempotency"
            f" WHERE instance = ? AND {cond}",
            [instance, *args],
        )
        for key, ticket, body_hash in found:
            held[(instance, key)] = Claim(ticket, body_hash)
    return [held.get((a.instance, a.key)) for a in asks]


class WebKeys:
    """The idempotency keys every process of a web instance has taken, shared by the database."""

    def __init__(self) -> None:
        self._claims: GroupCommit[_Ask, Claim | None] = GroupCommit(_claim_all)

    async def claim(self, instance: str, key: str, claim: Claim) -> Claim:
        """Take `key` for `claim` unless taken; the claim that holds it (ours if we won)."""
        held = await self._claims(_Ask(instance, key, claim, datetime.now(UTC)))
        # Only a release racing between our insert and our read leaves nothing: take it again.
        return held if held is not None else await self.claim(instance, key, claim)

    async def release(self, instance: str, key: str, claim: Claim) -> None:
        """Give `key` up again when the message it stands for could not be accepted."""
        await WebIdempotency.filter(instance=instance, idem_key=key, ticket=claim.ticket).delete()

    async def prune(self, instance: str, before: datetime) -> int:
        """Forget keys taken before `before`: a double submit or retry comes within minutes."""
        return await prune_before(WebIdempotency, instance, before)
