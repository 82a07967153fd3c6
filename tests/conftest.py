"""Fixtures shared by the whole suite: settings on a throw-away home, a running app."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="module")
def pg_url(pg_server: None) -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own, dropped afterwards."""
    name = f"ih_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = PG_BASE + name
    asyncio.run(db.migrate(url))
    yield url
    asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend (PostgreSQL: the module's, emptied)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'data' / 'hub.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    tables = ", ".join(f'"{t}"' for t in (*TABLES, "customer"))
    asyncio.run(_truncate(url, tables))
    return url


async def _truncate(url: str, tables: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"TRUNCATE {tables} CASCADE")
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
