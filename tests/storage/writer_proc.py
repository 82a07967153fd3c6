"""A second writer process for the race tests: saves envelopes from a file when told to go."""

from __future__ import annotations

import asyncio
import json
import sys

from intake_hub.envelope import Envelope
from intake_hub.storage import db
from intake_hub.storage.writer import TicketWriter


async def main(url: str, envs: list[Envelope]) -> None:
    """Open the database, say ready, wait for a line on stdin, then save and print results."""
    await db.open_db(url, migrate=False)
    writer = TicketWriter(batch_size=64)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    # Backwards, so the two writers are sure to meet in the middle.
    results = await asyncio.gather(*(writer.save(e) for e in reversed(envs)))
    rows = [[r.ticket, r.created, r.duplicate] for r in reversed(results)]
    print(json.dumps(rows), flush=True)
    await db.close_db()


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as f:
        loaded = [Envelope.model_validate_json(line) for line in f]
    asyncio.run(main(sys.argv[1], loaded))
