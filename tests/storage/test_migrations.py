"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise.context import TortoiseContext

from intake_hub.storage import db
from tests.conftest import PG_ADMIN, PG_BASE

Schema = dict[str, Any]
_RECORDER = {"tortoise_migrations"}


def _sqlite_schema(path: Path) -> Schema:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_") and r[0] not in _RECORDER
        ]
        schema: Schema = {}
        for t in sorted(tables):
            columns = {
                (name, ctype.upper(), bool(notnull), bool(pk))
                for _, name, ctype, notnull, _default, pk in conn.execute(
                    f'PRAGMA table_info("{t}")'
                )
            }
            indexes = set()
            for _, name, unique, _origin, _partial in conn.execute(f'PRAGMA index_list("{t}")'):
                cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")'))
                indexes.add((cols, bool(unique)))
            fks = {
                (r[3], r[2], r[4], r[6]) for r in conn.execute(f'PRAGMA foreign_key_list("{t}")')
            }
            schema[t] = {"columns": columns, "indexes": indexes, "fks": fks}
        return schema
    finally:
        conn.close()


async def _pg_schema(url: str) -> Schema:
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, character_maximum_length "
            "FROM information_schema.columns WHERE table_schema = 'public'"
        )
        indexes = await conn.fetch(
            "SELECT t.relname AS tbl, ix.indisunique AS uniq, ix.indisprimary AS pk, "
            "array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.i) AS cols "
            "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid "
            "JOIN pg_namespace ns ON ns.oid = t.relnamespace WHERE ns.nspname = 'public'"
        )
        fks = await conn.fetch(
            "SELECT conrelid::regclass::text AS tbl, confrelid::regclass::text AS ref, "
            "pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'f'"
        )
    finally:
        await conn.close()
    schema: Schema = {}
    for r in columns:
        if r["table_name"] in _RECORDER:
            continue
        t = schema.setdefault(r["table_name"], {"columns": set(), "indexes": set(), "fks": set()})
        t["columns"].add(tuple(r.values())[1:])
    for r in indexes:
        if r["tbl"] in schema:
            schema[r["tbl"]]["indexes"].add((tuple(r["cols"]), r["uniq"], r["pk"]))
    for r in fks:
        if r["tbl"] in schema:
            schema[r["tbl"]]["fks"].add((r["ref"], r["def"]))
    return schema


async def _generate(url: str) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=db.tortoise_config(url))
        await ctx.generate_schemas(safe=False)


async def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    """Migrating a fresh SQLite file gives the same tables, columns and keys as the models."""
    migrated, generated = tmp_path / "m" / "a.sqlite3", tmp_path / "g" / "b.sqlite3"
    await db.migrate(f"sqlite://{migrated}")
    generated.parent.mkdir()
    await _generate(f"sqlite://{generated}")
    got, want = _sqlite_schema(migrated), _sqlite_schema(generated)
    assert set(got) == {
        "customer",
        "customer_identity",
        "team",
        "agent",
        "ticket",
        "ticket_alias",
        "message",
        "attachment",
        "event",
        "wechat_delivery",
        "wechat_outbound",
        "wechat_token",
        "wechat_nonce",
        "web_idempotency",
        "auto_reply_count",
        "app_event",
        "mail_outbound",
        "mail_address",
        "imap_mailbox",
    }
    assert got == want


@pytest.mark.postgres
async def test_postgres_migrations_match_models(pg_server: None) -> None:
    """Migrating a fresh PostgreSQL database gives the same schema as the models describe."""
    names = [f"ih_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        await db.migrate(PG_BASE + names[0])
        await db.migrate(PG_BASE + names[0])  # a second run finds nothing to do
        await _generate(PG_BASE + names[1])
        got, want = await _pg_schema(PG_BASE + names[0]), await _pg_schema(PG_BASE + names[1])
        assert len(got) == 19
        assert got == want
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
