"""`routing.yaml`: teams, which team handles each category, and the fallback team."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Team(_Spec):
    """A team agents belong to, with the name people see."""

    name: str = Field(min_length=1)


class CategoryRoute(_Spec):
    """Where one category goes: a team, and skills an agent needs to take it."""

    team: Ident
    skills: tuple[Ident, ...] = ()


class RoutingRules(_Spec):
    """The validated content of routing.yaml."""

    teams: dict[Ident, Team] = Field(min_length=1)
    fallback: Ident
    categories: dict[Ident, CategoryRoute] = Field(default_factory=dict)

    def team_name(self, team: str) -> str:
        """The display name of `team`, or its id when unknown."""
        known = self.teams.get(team)
        return known.name if known else team
