"""Who can take a ticket now: the least-loaded online agent of a team, from a cached view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from tortoise.functions import Count

from intake_hub.storage.models import Agent, Ticket

OPEN = ("received", "in_progress")


@dataclass(frozen=True, slots=True)
class _Member:
    login: str
    team: str
    skills: frozenset[str]
    capacity: int


class DbRoster:
    """Picks assignees from agents and open-ticket loads cached for `refresh_s` seconds."""

    def __init__(self, refresh_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_s = refresh_s
        self._clock = clock
        self._members: list[_Member] = []
        self._load: dict[str, int] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Reload online agents and their open-ticket counts from the database."""
        agents = await Agent.filter(online=True, team_id__isnull=False).values(
            "id", "team_id", "skills", "capacity"
        )
        loads = (
            await Ticket.filter(status__in=OPEN, assignee_id__isnull=False)
            .annotate(n=Count("id"))
            .group_by("assignee_id")
            .values("assignee_id", "n")
        )
        self._members = [
            _Member(a["id"], a["team_id"], frozenset(a["skills"] or ()), a["capacity"])
            for a in agents
        ]
        self._load = {r["assignee_id"]: r["n"] for r in loads}
        self._loaded_at = self._clock()

    async def pick(self, team: str, skills: tuple[str, ...] = ()) -> str | None:
        """The login of the least-loaded agent of `team` with every skill and spare capacity."""
        if self._loaded_at is None or self._clock() - self._loaded_at >= self.refresh_s:
            async with self._lock:
                if self._loaded_at is None or self._clock() - self._loaded_at >= self.refresh_s:
                    await self.refresh()
        wanted = set(skills)
        best: tuple[int, str] | None = None
        for m in self._members:
            load = self._load.get(m.login, 0)
            if m.team == team and wanted <= m.skills and load < m.capacity:
                best = min(best, (load, m.login)) if best else (load, m.login)
        if best is None:
            return None
        # Counted here at once, so a burst between refreshes spreads over the team.
        self._load[best[1]] = best[0] + 1
        return best[1]
