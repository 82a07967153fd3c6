"""Seen nonces of plaintext-mode pushes: insert-or-compare by (instance, nonce, timestamp).

A plaintext push's signature covers token, timestamp and nonce but not the body, so the
same signed query could carry any body. The first request with a (nonce, timestamp) stores
its body's hash; a later one passes only with the same hash (WeChat's retry of that push),
and anything else is a replay. Rows are written in group commits, as deliveries are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from intake_hub.storage.group import GroupCommit
from intake_hub.storage.models import WeChatNonce
from intake_hub.storage.retention import prune_before
from intake_hub.storage.schema import columns
from intake_hub.storage.sql import Sql

_COLS = ("instance", "nonce", "timestamp", "body_hash", "seen_at")


@dataclass(frozen=True, slots=True)
class _Seen:
    instance: str
    nonce: str
    timestamp: int
    body_hash: str
    at: datetime


async def _see_all(sql: Sql, asks: Sequence[_Seen]) -> list[bool]:
    """Insert every (instance, nonce, timestamp) not seen before, then compare body hashes."""
    rows = sorted(asks, key=lambda a: (a.instance, a.nonce, a.timestamp))
    await sql.insert(
        "wechat_nonce",
        columns(WeChatNonce, *_COLS),
        [[a.instance, a.nonce, a.timestamp, a.body_hash, sql.dt(a.at)] for a in rows],
    )
    first: dict[tuple[str, str, int], str] = {}
    for instance in sorted({a.instance for a in asks}):
        nonces = sorted({a.nonce for a in asks if a.instance == instance})
        cond, args = sql.in_("nonce", nonces, "text")
        found = await sql.fetch(
            f"SELECT nonce, timestamp, body_hash FROM wechat_nonce WHERE instance = ? AND {cond}",
            [instance, *args],
        )
        for nonce, timestamp, body_hash in found:
            first[(instance, nonce, int(timestamp))] = body_hash
    # A row gone already (pruned by a process whose clock runs far ahead) counts as refused.
    return [first.get((a.instance, a.nonce, a.timestamp)) == a.body_hash for a in asks]


class Nonces:
    """The nonces every process of an account has seen, shared through the database."""

    def __init__(self) -> None:
        self._seen: GroupCommit[_Seen, bool] = GroupCommit(_see_all)

    async def see(self, instance: str, nonce: str, timestamp: int, body_hash: str) -> bool:
        """Record this (nonce, timestamp); False when it was first seen with another body."""
        return await self._seen(_Seen(instance, nonce, timestamp, body_hash, datetime.now(UTC)))

    async def prune(self, instance: str, before: int, batch: int = 5000) -> int:
        """Forget nonces whose timestamp is before `before` (unix seconds); how many went."""
        return await prune_before(WeChatNonce, instance, before, batch, column="timestamp")
