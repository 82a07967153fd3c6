"""Agents and teams: accounts, bearer tokens and the team rows routing refers to."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from intake_hub.storage.models import Agent, Team

ROLES = ("admin", "supervisor", "agent")


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """Who a valid bearer token belongs to."""

    login: str
    name: str
    role: str
    team: str | None


def hash_token(token: str) -> str:
    """The stored form of a bearer token (sha256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def add_agent(
    login: str,
    name: str,
    role: str,
    team: str | None = None,
    skills: Iterable[str] = (),
    capacity: int = 50,
) -> str:
    """Create an agent and return their new bearer token (only its hash is kept)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if team is not None:
        await Team.get_or_create(id=team, defaults={"name": team})
    token = secrets.token_urlsafe(32)
    await Agent.create(
        id=login,
        name=name,
        role=role,
        team_id=team,
        skills=list(skills),
        capacity=capacity,
        token_hash=hash_token(token),
    )
    return token


async def authenticate(token: str) -> AgentInfo | None:
    """The agent a bearer token belongs to, or None."""
    if not token:
        return None
    # Looked up by hash: the database never holds a usable token to leak or time against.
    agent = await Agent.get_or_none(token_hash=hash_token(token))
    if agent is None:
        return None
    return AgentInfo(
        login=agent.id,
        name=agent.name,
        role=agent.role,
        team=agent.team_id,  # type: ignore[attr-defined]
    )


async def sync_teams(teams: Mapping[str, str]) -> None:
    """Create or rename the team rows named by the routing rules (key -> display name)."""
    if not teams:
        return
    await Team.bulk_create(
        [Team(id=key, name=name) for key, name in teams.items()],
        on_conflict=["id"],
        update_fields=["name"],
    )
