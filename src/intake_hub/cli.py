"""The `intake-hub` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from intake_hub.config import ConfigError, Settings

log = logging.getLogger("intake_hub")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run everything in one process: HTTP intake, the API and every stage."""
    from aiohttp import web

    from intake_hub.app import create_app
    from intake_hub.connectors.registry import ConnectorConfigError
    from intake_hub.rules import RulesError

    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        loop = asyncio.new_event_loop()
    host = args.host or settings.http_host
    port = args.port or settings.http_port
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        app = create_app(settings)
    except (RulesError, ConnectorConfigError) as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None if args.quiet else logging.getLogger("intake_hub.access"),
        print=lambda *_: log.info("listening on http://%s:%s", host, port),
        shutdown_timeout=30.0,
        loop=loop,
    )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending database migrations."""
    from intake_hub.storage import db

    settings.home.mkdir(parents=True, exist_ok=True)
    asyncio.run(db.migrate(settings.database_url))
    print("database is up to date")
    return 0


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


def cmd_rules_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate the rule files; every problem names its file and line."""
    from intake_hub.rules import RulesError, load_rules

    rules_dir = args.rules_dir or settings.rules_dir
    try:
        rules = load_rules(rules_dir)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{rules_dir}: ok (version {rules.version})")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="intake-hub", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run everything in one process")
    serve.add_argument("--host", help="listen address (INTAKE_HUB_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (INTAKE_HUB_HTTP_PORT)")
    serve.add_argument("--quiet", action="store_true", help="no access log")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

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

    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(dest="rules", required=True)
    check = rules_sub.add_parser("check", help="validate the rule files")
    check.add_argument("rules_dir", nargs="?", type=Path)
    check.set_defaults(func=cmd_rules_check)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `intake-hub` console script."""
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
