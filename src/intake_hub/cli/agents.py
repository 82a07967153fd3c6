"""agent add, list, disable and token: the people who answer tickets and their tokens."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

import orjson

from intake_hub.config import Settings

T = TypeVar("T")


def _with_db(settings: Settings, act: Callable[[], Awaitable[T]]) -> T:
    from intake_hub.storage import db

    async def run() -> T:
        await db.open_db(settings.database_url)
        try:
            return await act()
        finally:
            await db.close_db()

    settings.home.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run())


def cmd_agent_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create an agent and print their bearer token (shown once, stored only as a hash)."""
    from intake_hub.storage import agents

    async def add() -> str | None:
        if await agents.agent_exists(args.login):
            return None
        return await agents.add_agent(
            args.login,
            args.name or args.login,
            args.role,
            team=args.team,
            skills=tuple(args.skill),
            capacity=args.capacity,
        )

    token = _with_db(settings, add)
    if token is None:
        print(
            f"intake-hub: an agent {args.login} already exists "
            f"(`intake-hub agent token {args.login}` gives them a new token)",
            file=sys.stderr,
        )
        return 1
    print(token)
    return 0


def cmd_agent_list(args: argparse.Namespace, settings: Settings) -> int:
    """List agents: login, role, team, enabled or disabled, name (never a token or hash)."""
    from intake_hub.storage import agents

    rows = _with_db(settings, agents.list_agents)
    if args.json:
        print(orjson.dumps([asdict(r) for r in rows]).decode())
        return 0
    if not rows:
        print("no agents")
        return 0
    width = max(len(r.login) for r in rows)
    for r in rows:
        state = "enabled" if r.enabled else "disabled"
        print(f"{r.login:<{width}}  {r.role:<10}  {r.team or '-':<12}  {state:<8}  {r.name}")
    print(f"{len(rows)} agent(s), {sum(not r.enabled for r in rows)} disabled")
    return 0


def cmd_agent_disable(args: argparse.Namespace, settings: Settings) -> int:
    """Disable an agent: their token stops working and no new ticket is routed to them."""
    from intake_hub.storage import agents

    if not _with_db(settings, lambda: agents.disable_agent(args.login)):
        print(f"intake-hub: no agent {args.login}", file=sys.stderr)
        return 1
    print(
        f"{args.login} disabled: their token is refused within a second; "
        f"`intake-hub agent token {args.login}` enables them again"
    )
    return 0


def cmd_agent_token(args: argparse.Namespace, settings: Settings) -> int:
    """Give an agent a new token and print it once; the old one stops working."""
    from intake_hub.storage import agents

    token = _with_db(settings, lambda: agents.rotate_token(args.login))
    if token is None:
        print(f"intake-hub: no agent {args.login}", file=sys.stderr)
        return 1
    print(token)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add agent add, list, disable and token to the command line."""
    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="agent", required=True
    )
    add = agent.add_parser("add", help="create an agent and print their token")
    add.add_argument("login")
    add.add_argument("--name")
    add.add_argument("--role", choices=("agent", "supervisor", "admin"), default="agent")
    add.add_argument("--team", help="team id from rules/routing.yaml")
    add.add_argument("--skill", action="append", default=[], help="a skill (repeatable)")
    add.add_argument("--capacity", type=int, default=50, help="most open tickets at once")
    add.set_defaults(func=cmd_agent_add)
    ls = agent.add_parser("list", help="list agents: login, role, team, enabled; no tokens")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.set_defaults(func=cmd_agent_list)
    disable = agent.add_parser("disable", help="refuse an agent's token, route nothing to them")
    disable.add_argument("login")
    disable.set_defaults(func=cmd_agent_disable)
    token = agent.add_parser(
        "token", help="print a new token for an agent (the old stops working; re-enables)"
    )
    token.add_argument("login")
    token.set_defaults(func=cmd_agent_token)
