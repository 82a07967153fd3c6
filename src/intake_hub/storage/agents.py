"""Agents and teams: accounts, bearer tokens and the team rows routing refers to."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from intake_hub.storage.models import Agent, Team

ROLES = ("admin", "supervisor", "agent")

# A disabled agent's token_hash starts with this: no sha256 hex digest can, so no token
# authenticates as them, and the random rest keeps the column's UNIQUE constraint happy.
DISABLED_PREFIX = "!disabled-"


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """Who a valid bearer token belongs to."""

    login: str
    name: str
    role: str
    team: str | None


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent as `agent list` shows them: never their token or its hash."""

    login: str
    name: str
    role: str
    team: str | None
    enabled: bool


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
    try:
        digest = hash_token(token)
    except UnicodeEncodeError:  # undecodable header bytes arrive as lone surrogates
        return None
    # Looked up by hash: the database never holds a usable token to leak or time against.
    agent = await Agent.get_or_none(token_hash=digest)
    if agent is None:
        return None
    return AgentInfo(
        login=agent.id,
        name=agent.name,
        role=agent.role,
        team=agent.team_id,  # type: ignore[attr-defined]
    )


async def agent_exists(login: str) -> bool:
    """Whether an agent with this login exists."""
    return await Agent.exists(id=login)


async def list_agents() -> list[AgentRow]:
    """Every agent, by login."""
    rows = await Agent.all().order_by("id").values("id", "name", "role", "team_id", "token_hash")
    return [
        AgentRow(
            login=r["id"],
            name=r["name"],
            role=r["role"],
            team=r["team_id"],
            enabled=not r["token_hash"].startswith(DISABLED_PREFIX),
        )
        for r in rows
    ]


async def disable_agent(login: str) -> bool:
    """Make the agent's token stop working and route nothing more to them; False if unknown."""
    sentinel = DISABLED_PREFIX + secrets.token_hex(27)
    changed = await Agent.filter(id=login).update(token_hash=sentinel, online=False)
    return changed > 0


async def rotate_token(login: str) -> str | None:
    """Give the agent a new token (the old stops working), enabling them again; None if unknown."""
    token = secrets.token_urlsafe(32)
    changed = await Agent.filter(id=login).update(token_hash=hash_token(token), online=True)
    return token if changed else None


async def sync_teams(teams: Mapping[str, str]) -> None:
    """Create or rename the team rows named by the routing rules (key -> display name)."""
    if not teams:
        return
    await Team.bulk_create(
        [Team(id=key, name=name) for key, name in teams.items()],
        on_conflict=["id"],
        update_fields=["name"],
    )
