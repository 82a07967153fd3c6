"""`routing.yaml`: teams and their strategy, category routes, field rules, VIP and caps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Strategy = Literal["least_loaded", "round_robin"]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Team(_Spec):
    """A team agents belong to, with the name people see and how work is shared out."""

    name: str = Field(min_length=1)
    strategy: Strategy = "least_loaded"


class CategoryRoute(_Spec):
    """Where one category goes: a team, and skills an agent needs to take it."""

    team: Ident
    skills: tuple[Ident, ...] = ()


class Match(_Spec):
    """Conditions of a rule; all given ones must hold."""

    category: Ident | None = None
    # Any of these among the classifier's tags or the customer's tags (region, product line).
    tags: tuple[str, ...] = ()
    # A carrier of an extracted tracking number (SF, ZTO, JD ...).
    carrier: str | None = None
    # An extracted order number starting with one of these prefixes (a shop or product line).
    order_prefix: tuple[str, ...] = ()


class RouteRule(_Spec):
    """A region or product-line rule: when it matches, it changes the team and adds skills."""

    name: str = Field(min_length=1, max_length=100)
    when: Match
    team: Ident | None = None
    skills: tuple[Ident, ...] = ()


class Vip(_Spec):
    """Customers carrying `tag` need an agent with `skill`."""

    tag: str = "vip"
    skill: Ident = "senior"


class RoutingRules(_Spec):
    """The validated content of routing.yaml."""

    teams: dict[Ident, Team] = Field(min_length=1)
    fallback: Ident
    categories: dict[Ident, CategoryRoute] = Field(default_factory=dict)
    rules: tuple[RouteRule, ...] = ()
    vip: Vip | None = Vip()

    def team_name(self, team: str) -> str:
        """The display name of `team`, or its id when unknown."""
        known = self.teams.get(team)
        return known.name if known else team

    def strategy(self, team: str) -> Strategy:
        """How `team` shares out work."""
        known = self.teams.get(team)
        return known.strategy if known else "least_loaded"
