"""agent add: the people who answer tickets."""

from __future__ import annotations

import argparse
import asyncio

from intake_hub.config import Settings


def cmd_agent_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create an agent and print their bearer token (shown once, stored only as a hash)."""
    from intake_hub.storage import agents, db

    async def add() -> str:
        await db.open_db(settings.database_url)
        try:
            return await agents.add_agent(
                args.login,
                args.name or args.login,
                args.role,
                team=args.team,
                skills=tuple(args.skill),
                capacity=args.capacity,
            )
        finally:
            await db.close_db()

    settings.home.mkdir(parents=True, exist_ok=True)
    token = asyncio.run(add())
    print(token)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add agent add to the command line."""
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
