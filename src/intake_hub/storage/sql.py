"""Set-based SQL for SQLite and PostgreSQL on the driver connections tortoise manages.

The writer speaks through this small interface so one batch costs a handful of
statements on either backend: set-based inserts with ON CONFLICT DO NOTHING that
report how many rows went in, `IN` lists, and an explicit transaction around it all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
import orjson
from tortoise.backends.base.client import BaseDBAsyncClient

from intake_hub.storage.outcome import LostRace
from intake_hub.storage.turns import write_turn

Row = Sequence[Any]
Column = tuple[str, str]  # name and PostgreSQL type


class Sql:
    """Statements for one transaction; `?` marks a parameter on both backends."""

    postgres = False
    greatest = "MAX"

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Run a query and return its rows."""
        raise NotImplementedError

    async def fetch_alone(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Run the transaction's only statement and return its rows.

        PostgreSQL runs it without BEGIN and COMMIT (one statement is atomic on its own);
        nothing may follow it in the same transaction.
        """
        return await self.fetch(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for every row of parameters."""
        raise NotImplementedError

    async def insert(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> int:
        """Insert rows, skipping any that hit a unique constraint; return how many went in."""
        raise NotImplementedError

    async def insert_new(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows that must all be new; a unique clash raises `LostRace`.

        Without `ON CONFLICT` PostgreSQL does not probe every unique index before each row
        (the index insert checks uniqueness anyway), and a clash aborts the transaction,
        which a lost race starts over in any case. PostgreSQL defers these inserts and
        sends them as one statement before the next other statement or the commit.
        """
        raise NotImplementedError

    async def flush(self) -> None:
        """Send the deferred inserts now (before the commit, and before any other statement)."""

    def in_(self, column: str, values: Sequence[Any], pgtype: str) -> tuple[str, list[Any]]:
        """A `column IN (values)` condition and its parameters."""
        raise NotImplementedError

    def uuid(self, value: UUID) -> Any:
        """A UUID as the driver wants it."""
        return value

    def dt(self, value: datetime) -> Any:
        """A timestamp as the driver wants it (always UTC)."""
        return value.astimezone(UTC)

    def json(self, value: Any) -> str:
        """A JSON column value."""
        return orjson.dumps(value).decode()

    def to_uuid(self, value: Any) -> UUID:
        """A UUID read back from the driver, as the stdlib type (asyncpg has its own subclass)."""
        return value if type(value) is UUID else UUID(str(value))

    def to_dt(self, value: Any) -> datetime:
        """A timestamp read back from the driver."""
        if isinstance(value, datetime):
            return value
        return datetime.fromisoformat(str(value))


class _Sqlite(Sql):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, list(args)))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._conn.executemany(sql, rows)

    async def insert(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> int:
        if not rows:
            return 0
        names = ", ".join(f'"{name}"' for name, _ in columns)
        marks = ", ".join("?" * len(columns))
        cursor = await self._conn.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING',
            rows,
        )
        return int(cursor.rowcount)

    async def insert_new(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        names = ", ".join(f'"{name}"' for name, _ in columns)
        marks = ", ".join("?" * len(columns))
        try:
            await self._conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise LostRace(table) from exc

    def in_(self, column: str, values: Sequence[Any], pgtype: str) -> tuple[str, list[Any]]:
        if not values:
            return "0 = 1", []
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def uuid(self, value: UUID) -> Any:
        return str(value)

    def dt(self, value: datetime) -> Any:
        # The format tortoise itself writes, so ORM reads and text comparisons agree.
        return value.astimezone(UTC).isoformat(" ")


def _numbered(sql: str) -> str:
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


def _unnest(table: str, columns: Sequence[Column], first: int = 1) -> str:
    # One array per column: the statement text is the same for any row count,
    # so asyncpg prepares it once.
    names = ", ".join(f'"{name}"' for name, _ in columns)
    arrays = ", ".join(
        f"${i}::{'text' if pgtype == 'jsonb' else pgtype}[]"
        for i, (_, pgtype) in enumerate(columns, start=first)
    )
    cols = ", ".join(
        f"c{i}::jsonb" if pgtype == "jsonb" else f"c{i}"
        for i, (_, pgtype) in enumerate(columns, start=1)
    )
    aliases = ", ".join(f"c{i}" for i in range(1, len(columns) + 1))
    return f'INSERT INTO "{table}" ({names}) SELECT {cols} FROM unnest({arrays}) AS u({aliases})'


def _arrays(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(len(columns))]


class _Postgres(Sql):
    postgres = True
    greatest = "GREATEST"

    def __init__(self, conn: Any, stack: AsyncExitStack) -> None:
        self._conn = conn
        self._stack = stack
        self._begun = False
        self._alone = False
        self._deferred: list[tuple[str, Sequence[Column], list[list[Any]]]] = []

    async def _begin(self) -> None:
        # BEGIN goes out with the first statement that needs it: a transaction that is
        # only its deferred inserts is one statement, atomic without BEGIN and COMMIT.
        if self._alone:
            raise RuntimeError("a statement after fetch_alone would not be atomic with it")
        if not self._begun:
            await self._stack.enter_async_context(self._conn.transaction())
            self._begun = True
        await self.flush()

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        await self._begin()
        return list(await self._conn.fetch(_numbered(sql), *args))

    async def fetch_alone(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        if self._begun or self._deferred or self._alone:
            raise RuntimeError("fetch_alone must be the transaction's only statement")
        self._alone = True
        return list(await self._conn.fetch(_numbered(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._begin()
            await self._conn.executemany(_numbered(sql), rows)

    async def insert(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> int:
        if not rows:
            return 0
        await self._begin()
        status = await self._conn.execute(
            f"{_unnest(table, columns)} ON CONFLICT DO NOTHING", *_arrays(columns, rows)
        )
        return int(status.rsplit(" ", 1)[1])

    async def insert_new(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:
            self._deferred.append((table, columns, _arrays(columns, rows)))

    async def flush(self) -> None:
        if not self._deferred:
            return
        if self._alone:
            raise RuntimeError("a statement after fetch_alone would not be atomic with it")
        steps, self._deferred = self._deferred, []
        # One round trip for every table: the inserts but the last become data-modifying
        # CTEs. Foreign keys are checked at the end of the statement, so order is free.
        parts: list[str] = []
        args: list[Any] = []
        for table, columns, arrays in steps:
            parts.append(_unnest(table, columns, first=len(args) + 1))
            args += arrays
        head = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
        try:
            await self._conn.execute(f"WITH {head} {parts[-1]}" if head else parts[-1], *args)
        except asyncpg.UniqueViolationError as exc:
            raise LostRace(", ".join(step[0] for step in steps)) from exc

    def in_(self, column: str, values: Sequence[Any], pgtype: str) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?::{pgtype}[])", [list(values)]


@asynccontextmanager
async def transaction(client: BaseDBAsyncClient) -> AsyncIterator[Sql]:
    """One write transaction on the client's own connection (SQLite) or a pooled one."""
    dialect = client.capabilities.dialect
    async with client.acquire_connection() as conn:
        if dialect == "sqlite":
            async with write_turn(client.filename):  # type: ignore[attr-defined]
                # IMMEDIATE takes the write lock up front: a deferred transaction that
                # reads first cannot wait for another process's lock, it fails at once.
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Sqlite(conn)
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()
        elif dialect == "postgres":
            # Leaving the stack commits the transaction if one began, or rolls it back.
            async with AsyncExitStack() as stack:
                sql = _Postgres(conn, stack)
                yield sql
                await sql.flush()
        else:
            raise RuntimeError(f"unsupported database dialect {dialect!r}")
