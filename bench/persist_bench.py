"""Persist throughput: N envelopes through concurrent `TicketWriter.save` calls.

    .venv/bin/python bench/persist_bench.py [--n 20000] [--batch-size 256] [--concurrency 512]

Runs on a fresh SQLite file, then on a throw-away PostgreSQL database if the server
on 127.0.0.1:5432 answers, and prints envelopes per second for each.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from intake_hub.envelope import CustomerRef, Envelope, Labels, Reply, Route
from intake_hub.ids import uuid7
from intake_hub.storage import db
from intake_hub.storage.models import Message, Ticket
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import TicketNumbers

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


def envelopes(n: int, customers: int) -> list[Envelope]:
    """N classified, answered and routed envelopes from a pool of customers (so some follow up)."""
    numbers = TicketNumbers(node=1)
    now = datetime.now(UTC)
    out = [
        Envelope(
            id=uuid7(),
            channel="wechat" if i % 3 else "web",
            source="bench",
            external_id=f"ext-{i}",
            ticket=numbers.next(),
            customer=CustomerRef(key=f"cust-{i % customers}", name=f"客户{i % customers}"),
            text=f"我的订单 {i} 的快递一直没有更新，麻烦查一下",
            received_at=now,
            labels=Labels(category="logistics", priority="normal", tags=("物流延迟",)),
            reply=Reply(kind="ack", text="已收到，我们会尽快处理。"),
            route=Route(team="aftersales", reasons=("category logistics",)),
        )
        for i in range(n)
    ]
    numbers.close()
    return out


async def run(url: str, envs: list[Envelope], batch_size: int, concurrency: int) -> float:
    """Save every envelope with `concurrency` callers in flight; returns envelopes per second."""
    await db.open_db(url)
    try:
        writer = TicketWriter(batch_size=batch_size)
        queue = iter(envs)

        async def caller() -> None:
            for env in queue:
                await writer.save(env)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
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


async def main() -> None:
    """Bench SQLite, then PostgreSQL when reachable."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--customers", type=int, default=5_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        envs = envelopes(args.n, args.customers)
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
        envs = envelopes(args.n, args.customers)
        await run(
            f"postgres://postgres@127.0.0.1:5432/{name}", envs, args.batch_size, args.concurrency
        )
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
