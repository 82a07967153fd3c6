"""Two writer processes on one PostgreSQL database: every envelope is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from intake_hub.storage import db
from intake_hub.storage.models import Event, Message, Ticket, TicketAlias
from intake_hub.storage.writer import TicketWriter

from .conftest import EnvFactory

pytestmark = pytest.mark.postgres
N = 1200


@pytest.fixture
async def pg_database(pg_url: str) -> object:
    """The module's PostgreSQL database, emptied and connected."""
    await db.open_db(pg_url)
    conn = db.connection()
    await conn.execute_script(
        "TRUNCATE event, message, ticket_alias, ticket, agent, team, "
        "customer_identity, customer CASCADE"
    )
    yield pg_url
    await db.close_db()


async def test_two_processes_store_each_envelope_once(
    pg_database: str, make_env: EnvFactory, tmp_path: Path
) -> None:
    """Two workers handed the same messages at once never make a second ticket or message."""
    envs = [make_env(f"问题 {i}", customer=f"cust-{i % 150}") for i in range(N)]
    path = tmp_path / "envs.jsonl"
    path.write_text("".join(e.model_dump_json() + "\n" for e in envs), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("writer_proc.py")),
        pg_database,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
    writer = TicketWriter(batch_size=64)
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    ours = await asyncio.gather(*(writer.save(e) for e in envs))
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert await proc.wait() == 0
    theirs = json.loads(line)

    # Each stored a share: the writers really did overlap.
    assert any(not r.duplicate for r in ours) and any(not t[2] for t in theirs)
    for env, mine, (number, _created, duplicate) in zip(envs, ours, theirs, strict=True):
        assert mine.ticket == number, env.id
        assert [mine.duplicate, duplicate].count(False) == 1, env.id
    assert await Message.filter(direction="in").count() == N
    assert await Message.filter(direction="out").count() == N
    tickets, aliases = await Ticket.all().count(), await TicketAlias.all().count()
    assert tickets + aliases == N
    assert await Event.filter(kind="created").count() == tickets
    assert await Event.filter(kind="message").count() == aliases
