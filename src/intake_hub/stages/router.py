"""The route stage: a team by category, then the least-loaded agent with the needed skills."""

from __future__ import annotations

from typing import Protocol

from intake_hub.envelope import Envelope, Route
from intake_hub.rules.routing import RoutingRules


class Roster(Protocol):
    """Who can take work now; the database implementation counts open tickets per agent."""

    async def pick(self, team: str, skills: tuple[str, ...] = ()) -> str | None:
        """The least-loaded available agent in `team` with every skill, or None."""
        ...


async def route(env: Envelope, rules: RoutingRules, roster: Roster) -> Envelope:
    """Set `route`: the team for the category (else the fallback) and a free agent, if any."""
    category = env.labels.category if env.labels is not None else None
    target = rules.categories.get(category) if category is not None else None
    if target is not None:
        team, skills = target.team, target.skills
        reasons = [f"category '{category}' goes to team '{team}' ({rules.team_name(team)})"]
    else:
        team, skills = rules.fallback, ()
        why = f"no team for category '{category}'" if category else "not classified"
        reasons = [f"{why}: fallback team '{team}' ({rules.team_name(team)})"]
    assignee = await roster.pick(team, skills)
    needs = f" with skills {', '.join(skills)}" if skills else ""
    if assignee is not None:
        reasons.append(f"least-loaded agent in '{team}'{needs}: {assignee}")
    else:
        reasons.append(f"no agent available in '{team}'{needs}: waits in the team queue")
    return env.model_copy(
        update={"route": Route(team=team, assignee=assignee, reasons=tuple(reasons))}
    )
