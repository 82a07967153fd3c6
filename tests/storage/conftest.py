"""Real databases for the storage tests: SQLite in tmp_path and a throw-away PostgreSQL DB."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from intake_hub.envelope import CustomerRef, Envelope, Labels, Reply, Route
from intake_hub.storage import db
from intake_hub.ticketno import TicketNumbers

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgres://postgres@127.0.0.1:5432/"
TABLES = ("event", "message", "ticket_alias", "ticket", "agent", "team", "customer_identity")


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
    """The local PostgreSQL server, started if it is down; skips the test if it cannot be."""
    if not _ensure_pg():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")


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
async def database(db_url: str) -> AsyncIterator[str]:
    """The models connected to a migrated database; closed after the test."""
    await db.open_db(db_url)
    try:
        yield db_url
    finally:
        await db.close_db()


@pytest.fixture
def numbers(tmp_path: Path) -> Iterator[TicketNumbers]:
    """A ticket-number issuer like the one at the edge."""
    issuer = TicketNumbers(node=7)
    yield issuer
    issuer.close()


EnvFactory = Callable[..., Envelope]


@pytest.fixture
def make_env(numbers: TicketNumbers) -> EnvFactory:
    """Build an envelope as it reaches persist: classified, answered and routed."""

    def make(
        text: str = "我的快递三天了还没到",
        *,
        customer: str = "openid-1",
        channel: str = "wechat",
        name: str | None = "王女士",
        received_at: datetime | None = None,
        **changes: Any,
    ) -> Envelope:
        fields: dict[str, Any] = {
            "id": uuid.uuid4(),
            "channel": channel,
            "source": f"{channel}/test",
            "external_id": uuid.uuid4().hex,
            "ticket": numbers.next(),
            "customer": CustomerRef(key=customer, name=name),
            "text": text,
            "received_at": received_at or datetime.now(UTC),
            "labels": Labels(category="logistics", priority="normal", tags=("物流延迟",)),
            "reply": Reply(kind="ack", text="已收到，我们会尽快处理。"),
            "route": Route(team="aftersales", reasons=("category logistics",)),
        }
        fields.update(changes)
        return Envelope(**fields)

    return make
