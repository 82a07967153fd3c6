"""Fixtures shared by the whole suite: settings on a throw-away home, a running app."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from intake_hub.config import Settings
from intake_hub.storage import db

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-0123456789"


PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgres://postgres@127.0.0.1:5432/"
TABLES = (
    "event",
    "message",
    "ticket_alias",
    "ticket",
    "agent",
    "team",
    "customer_identity",
    "wechat_delivery",
    "wechat_outbound",
    "wechat_token",
    "auto_reply_count",
    "web_idempotency",
    "wechat_nonce",
    "mail_outbound",
    "mail_address",
    "imap_mailbox",
)


async def _pg_up() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _ensure_pg() -> bool:
    if asyncio.run(_pg_up()):
        return True
    versions = [p.name for p in Path("/etc/postgresql").glob("*")]
    if not versions:
        return False
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"],
        check=False,
        capture_output=True,
    )
    return asyncio.run(_pg_up())


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server() -> None:
    """The local PostgreSQL server, started if it is down; a test needing it fails without it."""
    if not _ensure_pg():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started")


@pytest.fixture(scope="session")
def pg_template(pg_server: None) -> Iterator[str]:
    """The name of a PostgreSQL database migrated once per run, copied by `pg_database`.

    Migrating costs about a second of CPU per database; `CREATE DATABASE ... TEMPLATE`
    copies the migrated one in well under a tenth of that. Nothing connects to the
    template after it is migrated (PostgreSQL refuses to copy a database in use).
    """
    name = f"ih_tmpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(db.migrate(PG_BASE + name))
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def pg_database(template: str, prefix: str = "ih_") -> str:
    """A new migrated PostgreSQL database (a copy of `template`); its URL."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return PG_BASE + name


@pytest.fixture(scope="module")
def pg_url(pg_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own, dropped afterwards."""
    url = pg_database(pg_template)
    yield url
    asyncio.run(_admin(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run, copied by `db_url` for each test.

    Migrating a fresh file costs about 0.7 s of CPU; the copy is up to date, so the
    app's own migrate step on it finds nothing to do. The fresh migration itself is
    tested in tests/storage/test_migrations.py.
    """
    path = tmp_path_factory.mktemp("sqlite-template") / "hub.sqlite3"
    asyncio.run(db.migrate(f"sqlite://{path}"))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty migrated database on each backend (SQLite: a fresh copy of the migrated
    template, 0600 in a 0700 directory as the service makes it; PostgreSQL: the module's,
    emptied)."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "hub.sqlite3"
        db.create_private(path)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite://{path}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(url, (*TABLES, "customer")))
    return url


# The tables TRUNCATE ... CASCADE of these empties too: every table referencing one of them.
CASCADE = """
WITH RECURSIVE closure(oid) AS (
    SELECT c.oid FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1::text[])
  UNION
    SELECT con.conrelid FROM pg_constraint con JOIN closure ON con.confrelid = closure.oid
    WHERE con.contype = 'f'
)
SELECT relname FROM pg_class WHERE oid IN (SELECT oid FROM closure)
"""


async def _truncate(url: str, tables: tuple[str, ...]) -> None:
    """TRUNCATE `tables` CASCADE, skipped when it would empty nothing.

    A TRUNCATE costs 0.1-0.15 s (new files for every table, fsynced) even on empty tables,
    and many tests leave the tables empty; the check is one cheap query over the same
    tables and every table the CASCADE reaches, so the outcome is the same: all empty.
    """
    conn = await asyncpg.connect(url)
    try:
        closure = [r[0] for r in await conn.fetch(CASCADE, list(tables))]
        probe = " UNION ALL ".join(f"(SELECT '{t}' FROM \"{t}\" LIMIT 1)" for t in sorted(closure))
        if await conn.fetch(probe):
            names = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults on a fresh data directory, the shipped rules, fast retries."""
    return Settings(
        home=tmp_path / "home",
        database_url=f"sqlite://{tmp_path / 'home' / 'intake-hub.sqlite3'}",
        rules_dir=ROOT / "rules",
        connectors_dir=ROOT / "connectors",
        public_url="http://testserver",
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-0123456789abcdef",
        retry_delays=(0.05, 0.1),
        concurrency=32,
        # Most tests post the same form from one address; the limits' own tests turn them on.
        rate_limits=False,
    )


@pytest.fixture
def make_settings(settings: Settings) -> Callable[..., Settings]:
    """Settings with some fields changed."""

    def make(**changes: Any) -> Settings:
        from dataclasses import replace

        return replace(settings, **changes)

    return make
