"""Database set-up: the tortoise config for a URL, migrations, open and close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate as run_migrations

from intake_hub.storage.models import APP

MODELS = "intake_hub.storage.models"
MIGRATIONS = "intake_hub.storage.migrations"
CONNECTION = "default"


def is_sqlite(url: str) -> bool:
    """Whether the URL names a SQLite file."""
    return url.startswith("sqlite:")


async def _keep_session(conn: object) -> None:
    """Hand a pooled PostgreSQL connection back as it is."""
    # asyncpg still rolls back an open transaction. Its reset statement (unlock advisory
    # locks, close cursors, UNLISTEN, RESET ALL) undoes nothing this code does, and costs
    # a round trip and a transaction per query.


def tortoise_config(url: str) -> dict[str, Any]:
    """The tortoise configuration for a `sqlite://...` or `postgres://...` URL."""
    connection = expand_db_url(url)
    credentials = connection["credentials"]
    if is_sqlite(url):
        credentials["journal_mode"] = "WAL"
        # Several processes may share one file (serve + migrate, two workers): wait, not fail.
        credentials.setdefault("busy_timeout", 10_000)
    else:
        credentials["reset"] = _keep_session
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
            create_private(Path(path))


def create_private(path: Path) -> None:
    """Make `path` an empty file only its owner may read (0600), in a 0700 directory we make.

    SQLite gives its `-wal` and `-shm` files the mode of the database file, so creating
    the file first, before SQLite does with the umask's 0644, covers all three.
    An existing file is left as it is.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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


T = TypeVar("T")
log = logging.getLogger(__name__)

# The database is away (restarting, refusing connections, our backend killed), not wrong.
_UNAVAILABLE = (
    OSError,
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ObjectNotInPrerequisiteStateError,
    asyncpg.InterfaceError,
)
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now, rather than that the data is bad."""
    # asyncpg's client-side DataError is an InterfaceError too, but bad data stays bad.
    return isinstance(exc, _UNAVAILABLE) and not isinstance(exc, ValueError)


async def patiently(op: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """Run `op`, again with backoff while the database is unavailable, for up to `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = BACKOFF_FIRST_S
    while True:
        try:
            return await op()
        except Exception as exc:
            if not is_unavailable(exc) or loop.time() + delay > deadline:
                raise
            log.warning("database unavailable (%r); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
