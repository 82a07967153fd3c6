"""The route stage: team by category and rules, skills, then an agent from the roster.

Steps, each leaving a reason on the route:
1. category -> team and skills (routing.yaml `categories`, else the fallback team);
2. the first matching `rules` entry (region / product line) may change the team, add skills;
3. a VIP customer (tag `vip.tag`) needs the `vip.skill` (senior) as well;
4. the roster picks an online agent of the team with every skill, by the team's strategy.

Urgent tickets jump the queue: the roster lets them past an agent's soft cap (a share of
capacity kept free for them) but never the hard cap, and prefers the agent holding the
fewest urgent tickets. When nobody fits, the ticket waits unassigned in the team's queue,
which is the fallback queue supervisors watch and assign from by hand.
"""

from __future__ import annotations

from typing import Protocol

from intake_hub.envelope import Envelope, Priority, Route
from intake_hub.rules.routing import Match, RoutingRules, Strategy


class Roster(Protocol):
    """Who can take work now; the database implementation claims capacity atomically."""

    async def pick(
        self,
        team: str,
        skills: tuple[str, ...] = (),
        *,
        priority: Priority = "normal",
        strategy: Strategy = "least_loaded",
    ) -> str | None:
        """An online agent in `team` with every skill and room under the cap, or None."""
        ...


def _matches(when: Match, env: Envelope) -> bool:
    labels = env.labels
    if when.category is not None and (labels is None or labels.category != when.category):
        return False
    if when.tags:
        have = set(env.customer.tags) | set(labels.tags if labels else ())
        if not have & set(when.tags):
            return False
    extracted = labels.extracted if labels is not None else None
    if when.carrier is not None:
        carriers = {t.split(":", 1)[0] for t in (extracted.tracking_numbers if extracted else ())}
        if when.carrier not in carriers:
            return False
    if when.order_prefix:
        orders = extracted.order_numbers if extracted else ()
        if not any(o.startswith(when.order_prefix) for o in orders):
            return False
    return True


async def route(env: Envelope, rules: RoutingRules, roster: Roster) -> Envelope:
    """Set `route`: the team, the skills needed and a free agent if any, with reasons."""
    category = env.labels.category if env.labels is not None else None
    priority: Priority = env.labels.priority if env.labels is not None else "normal"
    target = rules.categories.get(category) if category is not None else None
    if target is not None:
        team, skills = target.team, target.skills
        reasons = [f"category '{category}' goes to team '{team}' ({rules.team_name(team)})"]
    else:
        team, skills = rules.fallback, ()
        why = f"no team for category '{category}'" if category else "not classified"
        reasons = [f"{why}: fallback team '{team}' ({rules.team_name(team)})"]
    for rule in rules.rules:
        if _matches(rule.when, env):
            if rule.team is not None and rule.team != team:
                team = rule.team
                reasons.append(f"rule '{rule.name}': team '{team}' ({rules.team_name(team)})")
            added = tuple(s for s in rule.skills if s not in skills)
            if added:
                skills += added
                reasons.append(f"rule '{rule.name}': needs skills {', '.join(added)}")
            break
    if rules.vip is not None and rules.vip.tag in env.customer.tags:
        if rules.vip.skill not in skills:
            skills += (rules.vip.skill,)
        reasons.append(f"customer tag '{rules.vip.tag}': needs skill '{rules.vip.skill}'")
    strategy = rules.strategy(team)
    assignee = await roster.pick(team, skills, priority=priority, strategy=strategy)
    needs = f" with skills {', '.join(skills)}" if skills else ""
    how = "next agent in turn" if strategy == "round_robin" else "least-loaded agent"
    if priority == "urgent":
        how = f"urgent, ahead of the queue: {how}"
    if assignee is not None:
        reasons.append(f"{how} in '{team}'{needs}: {assignee}")
    else:
        reasons.append(f"no agent available in '{team}'{needs}: waits in the team queue")
    return env.model_copy(
        update={"route": Route(team=team, assignee=assignee, reasons=tuple(reasons))}
    )
