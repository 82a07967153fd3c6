"""Database set-up: the tortoise config for a URL, migrations, open and close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as run_migrations

from intake_hub.storage.models import APP

MODELS = "intake_hub.storage.models"
MIGRATIONS = "intake_hub.storage.migrations"
CONNECTION = "default"


def is_sqlite(url: str) -> bool:
    """Whether the URL names a SQLite file."""
    return url.startswith("sqlite:")


def tortoise_config(url: str) -> dict[str, Any]:
    """The tortoise configuration for a `sqlite://...` or `postgres://...` URL."""
    connection = expand_db_url(url)
    if is_sqlite(url):
        credentials = connection["credentials"]
        credentials["journal_mode"] = "WAL"
        # Several processes may share one file (serve + migrate, two workers): wait, not fail.
        credentials.setdefault("busy_timeout", 10_000)
    return {
        "connections": {CONNECTION: connection},
        "apps": {
            APP: {
                "models": [MODELS],
                "migrations": MIGRATIONS,
                "default_connection": CONNECTION,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _prepare(url: str) -> None:
    if is_sqlite(url):
        path = expand_db_url(url)["credentials"]["file_path"]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


async def migrate(url: str) -> None:
    """Apply every pending migration to the database at `url`."""
    _prepare(url)
    # A context of its own, so migrating never disturbs (or leaks) the app's connections.
    async with TortoiseContext():
        await run_migrations(config=tortoise_config(url))


_apply_migrations = migrate  # `open_db` takes a flag of the same name


async def open_db(url: str, *, migrate: bool = True) -> None:
    """Connect the models to the database at `url`, migrating it first unless told not to."""
    _prepare(url)
    if migrate:
        await _apply_migrations(url)
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_db() -> None:
    """Close every connection opened by `open_db`."""
    await Tortoise.close_connections()
    # Tortoise caches SQL per connection *name*: reopening "default" on another backend
    # (tests run SQLite then PostgreSQL in one process) must not reuse the old dialect's SQL.
    EXECUTOR_CACHE.clear()


def connection() -> BaseDBAsyncClient:
    """The tortoise client the models use (for the writer's set-based SQL)."""
    return Tortoise.get_connection(CONNECTION)


async def ping() -> None:
    """Raise unless the database answers a trivial query."""
    await connection().execute_query("SELECT 1")
