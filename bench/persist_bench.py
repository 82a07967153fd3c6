"""Persist throughput: N envelopes through concurrent `TicketWriter.save` calls.

    .venv/bin/python bench/persist_bench.py [--n 20000] [--batch-size 256] [--concurrency 512]
    .venv/bin/python bench/persist_bench.py --stats --shape web --n 5000

Runs on a fresh SQLite file, then on a throw-away PostgreSQL database if the server
on 127.0.0.1:5432 answers, and prints envelopes per second for each. `--stats` runs
PostgreSQL only and prints what each envelope cost the database (pg_stat deltas: row
writes, and scans per table and per index), which do not depend on the machine's load.
`--shape web` sends claimed web messages, each its own ticket (what bench/scaled_load.py
posts); `mix` (default) two thirds verified WeChat customers from a pool, who follow up.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import web_load as wl  # bench/ is on sys.path when this file runs as a script

from intake_hub.envelope import CustomerRef, Envelope, Labels, Reply, Route
from intake_hub.ids import uuid7
from intake_hub.storage import db
from intake_hub.storage.models import Message, Ticket
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import TicketNumbers

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgres://postgres@127.0.0.1:5432/"


def envelopes(n: int, customers: int, shape: str = "mix") -> list[Envelope]:
    """N classified, answered and routed envelopes in the given shape."""
    numbers = TicketNumbers(node=1)
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        web = shape == "web" or i % 3 == 0
        key = f"web-{i}@example.com" if web else f"cust-{i % customers}"
        out.append(
            Envelope(
                id=uuid7(),
                channel="web" if web else "wechat",
                source="web/web" if web else "wechat/wechat",
                external_id=f"ext-{i}",
                ticket=numbers.next(),
                customer=CustomerRef(
                    key=key, name=f"客户{i}", identity="claimed" if web else "verified"
                ),
                text=f"我的订单 {i} 的快递一直没有更新，麻烦查一下",
                received_at=now,
                labels=Labels(category="logistics", priority="normal", tags=("物流延迟",)),
                reply=Reply(kind="ack", text="已收到，我们会尽快处理。"),
                route=Route(team="aftersales", reasons=("category logistics",)),
            )
        )
    numbers.close()
    return out


async def save_all(envs: list[Envelope], batch_size: int, concurrency: int) -> float:
    """Save every envelope with `concurrency` callers in flight; returns the seconds taken."""
    writer = TicketWriter(batch_size=batch_size)
    queue = iter(envs)

    async def caller() -> None:
        for env in queue:
            await writer.save(env)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - start


async def run(url: str, envs: list[Envelope], batch_size: int, concurrency: int) -> float:
    """Save every envelope, check they are all stored; returns envelopes per second."""
    await db.open_db(url)
    try:
        elapsed = await save_all(envs, batch_size, concurrency)
        tickets = await Ticket.all().count()
        inbound = await Message.filter(direction="in").count()
        assert inbound == len(envs), (inbound, len(envs))
        rate = len(envs) / elapsed
        print(
            f"{url.split(':')[0]:9} {len(envs)} envelopes in {elapsed:.2f}s = {rate:,.0f}/s "
            f"({tickets} tickets, batch {batch_size}, {concurrency} callers)"
        )
        return rate
    finally:
        await db.close_db()


_STATS = (
    "SELECT 'table', relname, coalesce(idx_scan, 0) + seq_scan, n_tup_ins + n_tup_upd"
    " + n_tup_del FROM pg_stat_user_tables UNION ALL SELECT 'index', indexrelname, idx_scan,"
    " 0 FROM pg_stat_user_indexes UNION ALL SELECT 'db', 'xacts', xact_commit + xact_rollback,"
    " 0 FROM pg_stat_database WHERE datname = current_database()"
)



def own_cpu_s() -> float:
    """This process's CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def stats(url: str, envs: list[Envelope], batch_size: int, concurrency: int) -> None:
    """Print the scans, row writes and CPU per envelope that storing `envs` cost."""
    await db.migrate(url)
    conn = await asyncpg.connect(url)
    try:
        # A backend reports its counters when it exits: let the migration's go first.
        await asyncio.sleep(1)
        await conn.execute("SELECT pg_stat_reset()")
        await db.open_db(url, migrate=False)
        try:
            mine = own_cpu_s()
            elapsed = await save_all(envs, batch_size, concurrency)
            mine = own_cpu_s() - mine
            # The writer's backends opened with the run: all their CPU is its work.
            pids = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
            backends = sum(wl.cpu_s(r[0]) for r in pids)
        finally:
            await db.close_db()
        await asyncio.sleep(1)
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = await conn.fetch(_STATS)
    finally:
        await conn.close()
    n = len(envs)
    print(f"postgres  {n} envelopes in {elapsed:.2f}s, batch {batch_size}, per envelope:")
    scans = sum(r[2] for r in rows if r[0] == "table")
    writes = sum(r[3] for r in rows if r[0] == "table")
    print(f"  {'row writes':32} {writes / n:6.2f}")
    print(f"  {'scans':32} {scans / n:6.2f}")
    print(f"  {'PostgreSQL backends CPU (us)':32} {backends / n * 1e6:6.0f}")
    print(f"  {'writer process CPU (us)':32} {mine / n * 1e6:6.0f}")
    for kind, name, scanned, written in sorted(rows, key=lambda r: (r[0], r[1])):
        if kind == "db":
            print(f"  {'transactions':32} {scanned / n:6.3f}")
        elif scanned or written:
            what = f"{kind} {name}"
            print(f"  {what:50} scans {scanned / n:5.2f}  writes {written / n:5.2f}")


async def main() -> None:
    """Bench SQLite, then PostgreSQL when reachable (or PostgreSQL's counters with --stats)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--shape", choices=("mix", "web"), default="mix")
    parser.add_argument("--stats", action="store_true", help="PostgreSQL's counters only")
    args = parser.parse_args()

    if not args.stats:
        with tempfile.TemporaryDirectory() as tmp:
            envs = envelopes(args.n, args.customers, args.shape)
            url = f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
            await run(url, envs, args.batch_size, args.concurrency)

    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"postgres  skipped: {exc}")
        return
    name = f"ih_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        envs = envelopes(args.n, args.customers, args.shape)
        if args.stats:
            await stats(PG_BASE + name, envs, args.batch_size, args.concurrency)
        else:
            await run(PG_BASE + name, envs, args.batch_size, args.concurrency)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
