"""Embedded `serve` SIGKILLed while taking load, then started again: how many 202s were lost.

Starts `intake-hub serve` (embedded defaults, every process of it) on a fresh home, puts a
closed-loop load of web posts on it from many connections, and after `--kill-after`
seconds SIGKILLs the supervisor and every process it started at once (a power cut, the
OOM killer, `kill -9` of the group). Then it starts `serve` again on the same home, waits
until nothing more arrives, and compares the ticket numbers the clients were answered 202
with against the inbound messages in the SQLite file: lost (answered, never stored) and
doubled (stored twice). Loopback only.

    .venv/bin/python bench/crash_restart.py --kill-after 3 --out bench/results/crash.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import web_load as wl  # bench/ is on sys.path when this file runs as a script


def _inbound(db: Path) -> Counter[str]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        rows = conn.execute(
            "SELECT t.number FROM message m JOIN ticket t ON t.id = m.ticket_id "
            "WHERE m.direction = 'in' AND m.channel = 'web'"
        ).fetchall()
    finally:
        conn.close()
    return Counter(number for (number,) in rows)


async def _load(port: int, clients: int, kill_after: float, pid: int) -> dict[str, Any]:
    """Post until the kill; every ticket number answered 202 before it."""
    accepted: list[str] = []
    errors = 0
    stop = asyncio.Event()
    url = f"http://{wl.LOOPBACK}:{port}/api/v1/web/messages"
    texts = (wl.BENCH / "corpus.txt").read_text().splitlines()

    async def client(c: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        i = 0
        while not stop.is_set():
            i += 1
            body = {
                "name": "客户",
                "contact": f"c{c}-{i}@example.com",
                "text": texts[i % len(texts)],
            }
            try:
                async with session.post(url, json=body) as resp:
                    if resp.status == 202:
                        accepted.append((await resp.json())["ticket"])
            except (aiohttp.ClientError, OSError):
                errors += 1
                await asyncio.sleep(0.01)

    async def killer() -> float:
        await asyncio.sleep(kill_after)
        # The processes first: a supervisor dying first would send them SIGTERM (graceful).
        for p in reversed(wl.process_tree(pid)):
            os.kill(p, signal.SIGKILL)
        stop.set()
        return time.monotonic()

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        tasks = [asyncio.create_task(client(c, session)) for c in range(clients)]
        killed_at = await killer()
        await asyncio.gather(*tasks)
    return {
        "accepted": accepted,
        "load_s": round(killed_at - started, 2),
        "client_errors_after_kill": errors,
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One crash and one restart; the counts."""
    home = Path(tempfile.mkdtemp(prefix="crash-", dir=workdir))
    port = wl.free_port()
    env = wl.service_env(home, port) | (
        {"INTAKE_HUB_PROCESSES": str(args.processes)} if args.processes else {}
    )
    cmd = [str(Path(wl.PY).with_name("intake-hub")), "serve", "--quiet"]
    first = subprocess.Popen(
        cmd, cwd=wl.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while wl.http_get(port, "/readyz", timeout=1.0)[0] != 200:
        if time.monotonic() > deadline or first.poll() is not None:
            raise RuntimeError("serve did not become ready")
        time.sleep(0.1)
    time.sleep(1.0)  # every process of it up, not just the first
    load = asyncio.run(_load(port, args.clients, args.kill_after, first.pid))
    first.wait()
    accepted = load.pop("accepted")
    before = _inbound(home / "intake-hub.sqlite3")
    in_flight = len(set(accepted) - set(before))
    wl.log(f"killed after {load['load_s']} s: {len(accepted)} answered 202, {in_flight} unstored")
    with wl.server(cmd, port, "/readyz", env=env, log_path=home / "restart.log", timeout=60):
        settle = time.monotonic() + args.settle_timeout
        while time.monotonic() < settle:
            stored = _inbound(home / "intake-hub.sqlite3")
            if set(accepted) <= set(stored):
                break
            time.sleep(0.2)
        recovered_s = round(time.monotonic() - (settle - args.settle_timeout), 2)
    stored = _inbound(home / "intake-hub.sqlite3")
    lost = len(set(accepted) - set(stored))
    doubled = sum(1 for n in accepted if stored.get(n, 0) > 1)
    return {
        **load,
        "answered_202": len(accepted),
        "unstored_at_kill": in_flight,
        "lost": lost,
        "doubled": doubled,
        "recovered_s": recovered_s,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the crash, print the table, write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kill-after", type=float, default=3.0, help="seconds of load before the kill")
    p.add_argument("--clients", type=int, default=64, help="concurrent connections")
    p.add_argument("--processes", type=int, help="INTAKE_HUB_PROCESSES (default: the cores)")
    p.add_argument("--settle-timeout", type=float, default=120.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crash-bench-") as tmp:
        result = run(args, Path(tmp))
    result["machine"] = wl.machine()
    result["args"] = {k: v for k, v in vars(args).items() if k != "out"}
    print(
        f"answered 202: {result['answered_202']}, unstored at the kill: "
        f"{result['unstored_at_kill']}, lost: {result['lost']}, doubled: {result['doubled']}, "
        f"all stored {result['recovered_s']} s after the restarted serve was ready"
    )
    failed = result["lost"] + result["doubled"]
    print(f"goal: 0 lost, 0 doubled: {'NOT met' if failed else 'met'}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
