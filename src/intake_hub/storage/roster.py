"""Who can take a ticket now: an online agent of a team, claimed atomically under a cap.

Ranking reads a cached view (agents, and their open tickets weighted by priority) that is
refreshed every `refresh_s` seconds; a cache cannot keep two workers from choosing the same
agent. So the choice is then *claimed* in the database with one conditional statement:

    UPDATE agent SET open_count = open_count + 1
    WHERE id = ? AND online AND open_count < cap RETURNING open_count

Two rosters racing for the last slot both run it; the row lock lets one through and the
other updates nothing and tries the next candidate. `open_count` is the slot counter the
cap is enforced on (tickets routed and not yet released); `release` gives a slot back when
a ticket leaves the agent (reassignment), and each refresh recounts it from the open
tickets once the agent had no claim for `grace_s` (closed tickets, claims never stored).

Caps: `capacity` is the hard cap. Non-urgent tickets stop at the soft cap,
`ceil(capacity * soft_share)`, so an agent keeps room for urgent ones; an urgent ticket may
go up to the hard cap and prefers the agent holding the fewest urgent tickets (it jumps
the queue). Round robin (per team, a strategy in routing.yaml) turns through the team's
eligible agents in login order, from a cursor kept per process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.functions import Count

from intake_hub.envelope import Priority
from intake_hub.rules.routing import Strategy
from intake_hub.storage import db
from intake_hub.storage.models import Agent, Ticket
from intake_hub.storage.sql import transaction

OPEN = ("received", "in_progress")
# How much one open ticket weighs in an agent's load, by its priority.
WEIGHTS: dict[str, int] = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
SOFT_SHARE = 0.8

_CLAIM = (
    "UPDATE agent SET open_count = open_count + 1, last_claim_at = ? "
    "WHERE id = ? AND online = ? AND open_count < ? RETURNING open_count"
)
_OPEN_OF_AGENT = (
    "(SELECT COUNT(*) FROM ticket WHERE ticket.assignee_id = agent.id "
    "AND ticket.status IN ('received', 'in_progress'))"
)
# Raising to the stored count is always safe; lowering (a closed ticket, a claim whose
# ticket was never stored) only once no claim happened for `grace_s`, so a slot claimed but
# not yet persisted is never counted away. Claims and this run on the same row, serialised.
_RECOUNT = (
    f"UPDATE agent SET open_count = {_OPEN_OF_AGENT} "
    f"WHERE open_count < {_OPEN_OF_AGENT} OR (open_count > {_OPEN_OF_AGENT} "
    "AND (last_claim_at IS NULL OR last_claim_at < ?))"
)
_RELEASE = "UPDATE agent SET open_count = open_count - 1 WHERE id = ? AND open_count > 0"


@dataclass(frozen=True, slots=True)
class _Member:
    login: str
    team: str
    skills: frozenset[str]
    capacity: int


async def claim(login: str, cap: int) -> bool:
    """Take one slot of `login` if they are online and below `cap`; atomic across workers."""
    async with transaction(db.connection()) as sql:
        rows = await sql.fetch(_CLAIM, (sql.dt(datetime.now(UTC)), login, True, cap))
    return bool(rows)


async def recount(grace_s: float) -> None:
    """Bring every agent's slot count in line with their open tickets (see `_RECOUNT`)."""
    quiet_since = datetime.now(UTC) - timedelta(seconds=grace_s)
    async with transaction(db.connection()) as sql:
        await sql.fetch(_RECOUNT, (sql.dt(quiet_since),))


async def release(login: str) -> None:
    """Give back one slot of `login` (a ticket left them)."""
    async with transaction(db.connection()) as sql:
        await sql.fetch(_RELEASE, (login,))


class DbRoster:
    """Ranks agents from a cached view and claims the choice atomically in the database."""

    def __init__(
        self,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        soft_share: float = SOFT_SHARE,
        grace_s: float = 60.0,
    ) -> None:
        self.refresh_s = refresh_s
        self.grace_s = grace_s
        self.soft_share = soft_share
        self._clock = clock
        self._members: list[_Member] = []
        self._load: dict[str, int] = {}
        self._urgent: dict[str, int] = {}
        self._last: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Recount slots, then reload online agents and their open tickets by priority."""
        await recount(self.grace_s)
        agents = await Agent.filter(online=True, team_id__isnull=False).values(
            "id", "team_id", "skills", "capacity"
        )
        rows = (
            await Ticket.filter(status__in=OPEN, assignee_id__isnull=False)
            .annotate(n=Count("id"))
            .group_by("assignee_id", "priority")
            .values("assignee_id", "priority", "n")
        )
        self._members = sorted(
            (
                _Member(a["id"], a["team_id"], frozenset(a["skills"] or ()), a["capacity"])
                for a in agents
            ),
            key=lambda m: m.login,
        )
        self._load, self._urgent = {}, {}
        for r in rows:
            who = r["assignee_id"]
            self._load[who] = self._load.get(who, 0) + WEIGHTS.get(r["priority"], 2) * r["n"]
            if r["priority"] == "urgent":
                self._urgent[who] = self._urgent.get(who, 0) + r["n"]
        self._loaded_at = self._clock()

    def cap(self, capacity: int, priority: Priority) -> int:
        """The most tickets an agent of `capacity` may hold when taking one of `priority`."""
        if priority == "urgent":
            return capacity
        return max(1, math.ceil(capacity * self.soft_share))

    def _order(
        self, team: str, skills: tuple[str, ...], priority: Priority, strategy: Strategy
    ) -> list[_Member]:
        wanted = set(skills)
        fit = [m for m in self._members if m.team == team and wanted <= m.skills]
        if strategy == "round_robin":
            # Members are in login order: start after the last one this team gave work to.
            last = self._last.get(team, "")
            return [m for m in fit if m.login > last] + [m for m in fit if m.login <= last]
        if priority == "urgent":
            return sorted(
                fit, key=lambda m: (self._urgent.get(m.login, 0), self._load.get(m.login, 0))
            )
        return sorted(fit, key=lambda m: self._load.get(m.login, 0))

    async def pick(
        self,
        team: str,
        skills: tuple[str, ...] = (),
        *,
        priority: Priority = "normal",
        strategy: Strategy = "least_loaded",
    ) -> str | None:
        """The login of an online agent of `team` with every skill, claimed under the cap."""
        if self._loaded_at is None or self._clock() - self._loaded_at >= self.refresh_s:
            async with self._lock:
                if self._loaded_at is None or self._clock() - self._loaded_at >= self.refresh_s:
                    await self.refresh()
        for member in self._order(team, skills, priority, strategy):
            if await claim(member.login, self.cap(member.capacity, priority)):
                # Counted here at once, so a burst between refreshes spreads over the team.
                self._load[member.login] = self._load.get(member.login, 0) + WEIGHTS[priority]
                if priority == "urgent":
                    self._urgent[member.login] = self._urgent.get(member.login, 0) + 1
                self._last[team] = member.login
                return member.login
        return None
