"""Agent accounts, bearer tokens, teams and the database-backed roster."""

from __future__ import annotations

import pytest

from intake_hub.storage.agents import AgentInfo, add_agent, authenticate, hash_token, sync_teams
from intake_hub.storage.models import Agent, Team
from intake_hub.storage.roster import DbRoster
from intake_hub.storage.writer import TicketWriter

from .conftest import EnvFactory


async def test_authenticate_right_and_wrong_token(database: str) -> None:
    """The token handed out at creation signs the agent in; any other token does not."""
    token = await add_agent("li", "小李", "supervisor", team="aftersales")
    assert await authenticate(token) == AgentInfo("li", "小李", "supervisor", "aftersales")
    assert await authenticate(token + "x") is None
    assert await authenticate("") is None
    stored = await Agent.get(id="li")
    assert stored.token_hash == hash_token(token) and token not in stored.token_hash


async def test_add_agent_rejects_unknown_role(database: str) -> None:
    """An agent role outside admin/supervisor/agent is refused."""
    with pytest.raises(ValueError):
        await add_agent("x", "X", "boss")


async def test_sync_teams_creates_and_renames(database: str) -> None:
    """Teams from the routing rules appear, and a renamed team keeps its key."""
    await sync_teams({"aftersales": "售后", "presales": "售前"})
    await sync_teams({"aftersales": "售后服务部"})
    names = dict(await Team.all().values_list("id", "name"))
    assert names == {"aftersales": "售后服务部", "presales": "售前"}


async def test_roster_picks_least_loaded_with_skills(database: str, make_env: EnvFactory) -> None:
    """The agent with fewest open tickets and the needed skills gets the next ticket."""
    await add_agent("a", "A", "agent", team="aftersales", skills=["refund"])
    await add_agent("b", "B", "agent", team="aftersales", skills=["refund", "en"])
    await add_agent("c", "C", "agent", team="presales")
    from intake_hub.envelope import Route

    writer = TicketWriter()
    for i in range(2):
        await writer.save(make_env(customer=f"x{i}", route=Route(team="aftersales", assignee="a")))
    roster = DbRoster(refresh_s=60)
    assert await roster.pick("aftersales") == "b"
    assert await roster.pick("aftersales") == "b"  # b now has 2, a has 2: tie -> login
    assert await roster.pick("aftersales") == "a"
    assert await roster.pick("aftersales", ("en",)) == "b"
    assert await roster.pick("aftersales", ("fr",)) is None
    assert await roster.pick("nobody") is None


async def test_roster_respects_capacity_and_online(database: str) -> None:
    """Agents who are full or offline are skipped; nobody left means no assignee."""
    await add_agent("a", "A", "agent", team="t", capacity=2)
    await add_agent("b", "B", "agent", team="t", capacity=1)
    await add_agent("off", "Off", "agent", team="t")
    await Agent.filter(id="off").update(online=False)
    now = [0.0]
    roster = DbRoster(refresh_s=2, clock=lambda: now[0], grace_s=0)
    picks = [await roster.pick("t") for _ in range(4)]
    assert picks == ["a", "b", "a", None]
    now[0] = 5.0  # a refresh forgets local counts of tickets never stored
    assert await roster.pick("t") == "a"
