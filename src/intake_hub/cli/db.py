"""migrate: the database schema."""

from __future__ import annotations

import argparse
import asyncio

from intake_hub.config import Settings


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending database migrations."""
    from intake_hub.storage import db

    settings.home.mkdir(parents=True, exist_ok=True)
    asyncio.run(db.migrate(settings.database_url))
    print("database is up to date")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add migrate to the command line."""
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)
