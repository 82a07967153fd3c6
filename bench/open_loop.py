"""Open-loop, fixed-rate load: POST messages on a schedule, whatever the server does.

wrk is closed-loop (a connection sends its next request when the last answer came), so a
slow server slows the load down and its latency looks better than a customer would see it.
Here every request has a scheduled send time (Poisson or uniform arrivals at `--rate`), and
its latency is measured from that scheduled time, not from when a connection was free:
no coordinated omission. The client's own lateness (dispatch lag) is reported apart, so a
client that could not keep the schedule is not mistaken for a slow server.

    .venv/bin/python bench/open_loop.py --url http://127.0.0.1:8080 --rate 4000 --duration 15

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import queue
import random
import re
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
PATH = "/api/v1/web/messages"
HEADERS = {"Content-Type": "application/json"}


def load_corpus(path: Path) -> tuple[list[str], list[str]]:
    """Names and message texts from the corpus shared with post_message.lua."""
    names, texts = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, _, value = line.partition("\t")
        if kind == "N" and value:
            names.append(value)
        elif kind == "T" and value:
            texts.append(value)
    if not names or not texts:
        raise SystemExit(f"{path}: empty corpus")
    return names, texts


def make_bodies(
    count: int, worker: int, run: str, rng: random.Random, corpus: tuple[list[str], list[str]]
) -> list[bytes]:
    """`count` JSON bodies, each with a distinct contact."""
    names, texts = corpus
    out = []
    for n in range(1, count + 1):
        order = f"{rng.randint(1000, 9999)}{rng.randint(0, 9_999_999):07d}"
        if n % 2 == 0:
            contact = f"o{run}-{worker}-{n}@example.com"
        else:
            contact = f"+86 15{worker % 10} {n % 100_000_000:08d}"
        body: dict[str, str] = {
            "name": rng.choice(names),
            "contact": contact,
            "text": rng.choice(texts).replace("{order}", order),
        }
        if n % 3 == 0:
            body["order_id"] = order
        out.append(orjson.dumps(body))
    return out


def schedule(
    count: int, rate: float, arrivals: str, rng: random.Random, phase: float
) -> list[float]:
    """Send offsets in seconds from the start: Poisson (exponential gaps) or uniform."""
    if arrivals == "uniform":
        return [phase + i / rate for i in range(count)]
    t, out = 0.0, []
    for _ in range(count):
        t += rng.expovariate(rate)
        out.append(t)
    return out


@dataclass
class Raw:
    """One worker's raw observations (seconds)."""

    scheduled: int = 0
    dropped: int = 0
    unfinished: int = 0
    ok: int = 0
    non_2xx: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    lat_sched: list[float] = field(default_factory=list)
    lat_send: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)
    wall_start: float = 0.0
    t0: float = 0.0


class _Pool:
    """Keep-alive HTTP/1.1 connections driven by callbacks: a lean client for high rates.

    One request per connection at a time (no pipelining); a due request waits in FIFO
    order for a free connection, and that wait counts in its latency.
    """

    def __init__(self, host: str, port: int, size: int, raw: Raw) -> None:
        self.host, self.port, self.size, self.raw = host, port, size, raw
        self.idle: list[_Conn] = []
        self.waiting: deque[tuple[bytes, float]] = deque()
        self.busy = 0
        self.closing = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
            self.idle.append(conn)

    def outstanding(self) -> int:
        return self.busy + len(self.waiting)

    def submit(self, data: bytes, due: float) -> None:
        if self.idle:
            self.busy += 1
            self.idle.pop().send(data, due)
        else:
            self.waiting.append((data, due))

    def finished(self, conn: _Conn, status: int, due: float, sent: float) -> None:
        end = time.perf_counter()
        raw = self.raw
        if 200 <= status < 300:
            raw.ok += 1
            raw.lat_sched.append(end - due)
            raw.lat_send.append(end - sent)
            raw.done_at.append(end - raw.t0)
        else:
            raw.non_2xx += 1
        self._next(conn)

    def _next(self, conn: _Conn) -> None:
        if self.waiting:
            data, due = self.waiting.popleft()
            conn.send(data, due)
        else:
            self.busy -= 1
            self.idle.append(conn)

    def failed(self, conn: _Conn, exc: BaseException | None, in_flight: bool) -> None:
        if in_flight:
            self.busy -= 1
            kind = type(exc).__name__ if exc else "ConnectionClosed"
            self.raw.errors += 1
            self.raw.error_kinds[kind] = self.raw.error_kinds.get(kind, 0) + 1
        if conn in self.idle:
            self.idle.remove(conn)
        if not self.closing:
            asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        except OSError as exc:
            kind = type(exc).__name__
            self.raw.error_kinds[kind] = self.raw.error_kinds.get(kind, 0) + 1
            return
        self.busy += 1
        self._next(conn)

    def close(self) -> None:
        self.closing = True
        for conn in self.idle:
            conn.transport.close()


_CL = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.buf = bytearray()
        self.need = -1
        self.status = 0
        self.due = self.sent = 0.0
        self.active = False
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self, data: bytes, due: float) -> None:
        self.active, self.due, self.sent = True, due, time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.active:
            if self.need < 0:
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    return
                head = bytes(self.buf[: i + 2])
                del self.buf[: i + 4]
                self.status = int(head[9:12])
                m = _CL.search(head)
                self.need = int(m.group(1)) if m else 0
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            self.active = False
            self.pool.finished(self, self.status, self.due, self.sent)

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.active
        self.active = False
        self.pool.failed(self, exc, was)


async def _drive(
    url: str,
    rate: float,
    duration: float,
    connections: int,
    arrivals: str,
    max_outstanding: int,
    grace: float,
    worker: int,
    run: str,
    seed: int,
    phase: float,
    start_at: float,
    engine: str,
) -> Raw:
    rng = random.Random(seed * 1000 + worker)
    count = max(1, int(rate * duration))
    bodies = make_bodies(count, worker, run, rng, load_corpus(HERE / "corpus.txt"))
    offsets = schedule(count, rate, arrivals, rng, phase)
    raw = Raw(scheduled=count)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path if parts.path not in ("", "/") else PATH
    loop = asyncio.get_running_loop()
    outstanding = 0
    tasks: set[asyncio.Task[None]] = set()
    session: aiohttp.ClientSession | None = None
    pool: _Pool | None = None
    if engine == "raw":
        pool = _Pool(host, port, connections, raw)
        await pool.open()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        )
        requests = [f"{head}{len(b)}\r\n\r\n".encode() + b for b in bodies]
    else:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            skip_auto_headers=("User-Agent",),
        )
        target = f"http://{host}:{port}{path}"
        requests = bodies

    async def one(body: bytes, due: float) -> None:
        nonlocal outstanding
        assert session is not None
        sent = time.perf_counter()
        try:
            async with session.post(target, data=body, headers=HEADERS) as resp:
                await resp.read()
                status = resp.status
        except Exception as exc:  # every failure is counted, by kind
            kind = type(exc).__name__
            raw.errors += 1
            raw.error_kinds[kind] = raw.error_kinds.get(kind, 0) + 1
            return
        finally:
            outstanding -= 1
        end = time.perf_counter()
        if 200 <= status < 300:
            raw.ok += 1
            raw.lat_sched.append(end - due)
            raw.lat_send.append(end - sent)
            raw.done_at.append(end - t0)
        else:
            raw.non_2xx += 1

    try:
        # All workers start on the same wall-clock instant.
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = raw.t0 = time.perf_counter()
        raw.wall_start = time.time()
        i = 0
        while i < count:
            now = time.perf_counter() - t0
            while i < count and offsets[i] <= now:
                due = t0 + offsets[i]
                raw.lag.append(now + t0 - due)
                busy = pool.outstanding() if pool is not None else outstanding
                if busy >= max_outstanding:
                    raw.dropped += 1
                elif pool is not None:
                    pool.submit(requests[i], due)
                else:
                    outstanding += 1
                    task = loop.create_task(one(requests[i], due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                i += 1
            if i < count:
                await asyncio.sleep(max(0.0, offsets[i] - (time.perf_counter() - t0)))
        deadline = time.perf_counter() + grace
        if pool is not None:
            while pool.outstanding() and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            raw.unfinished = pool.outstanding()
        elif tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=grace)
            raw.unfinished = len(pending)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
    finally:
        if pool is not None:
            pool.close()
        if session is not None:
            await session.close()
    return raw


def _worker(args: dict[str, Any], worker: int, out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    raw = asyncio.run(_drive(worker=worker, **args))
    out.put((worker, asdict(raw)))


def pct(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) in milliseconds."""
    if not values:
        return None
    k = min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))
    return round(values[k] * 1000, 3)


def summarize(raws: list[dict[str, Any]], rate: float, duration: float) -> dict[str, Any]:
    """Merge the workers' observations into one report."""
    total: dict[str, Any] = {
        k: sum(r[k] for r in raws)
        for k in ("scheduled", "dropped", "unfinished", "ok", "non_2xx", "errors")
    }
    kinds: dict[str, int] = {}
    for r in raws:
        for k, v in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    lat = sorted(x for r in raws for x in r["lat_sched"])
    lat_send = sorted(x for r in raws for x in r["lat_send"])
    lag = sorted(x for r in raws for x in r["lag"])
    done = sorted(x for r in raws for x in r["done_at"])
    # p99 per third of the run: a rising trend means the queue grew (server fell behind).
    thirds = []
    by_time = sorted(
        (d, la) for r in raws for d, la in zip(r["done_at"], r["lat_sched"], strict=True)
    )
    for j in range(3):
        lo, hi = duration * j / 3, duration * (j + 1) / 3
        chunk = sorted(la for d, la in by_time if lo <= d < hi)
        thirds.append(pct(chunk, 99))
    last = done[-1] if done else 0.0
    total.update(
        target_rate=rate,
        duration_s=duration,
        error_kinds=kinds,
        achieved_rate=round(total["ok"] / max(last, duration), 1) if done else 0.0,
        last_answer_s=round(last, 3),
        latency_ms={p: pct(lat, float(p)) for p in ("50", "90", "99", "99.9")}
        | {"max": round(lat[-1] * 1000, 3) if lat else None},
        service_time_ms={p: pct(lat_send, float(p)) for p in ("50", "99")},
        dispatch_lag_ms={p: pct(lag, float(p)) for p in ("50", "99")}
        | {"max": round(lag[-1] * 1000, 3) if lag else None},
        p99_by_third_ms=thirds,
    )
    return total


def main(argv: list[str] | None = None) -> int:
    """Run the workers, merge, print JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="base URL (loopback) or the full intake URL")
    p.add_argument("--rate", type=float, required=True, help="requests per second in total")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of sending")
    p.add_argument("--connections", type=int, default=128, help="pool size per worker")
    p.add_argument("--workers", type=int, default=1, help="client processes sharing the rate")
    p.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    p.add_argument(
        "--max-outstanding",
        type=int,
        default=20_000,
        help="per worker; beyond it a due request is dropped and counted",
    )
    p.add_argument("--grace", type=float, default=10.0, help="seconds to wait for the last answers")
    p.add_argument(
        "--engine",
        choices=("raw", "aiohttp"),
        default="raw",
        help="raw: lean keep-alive HTTP/1.1 pool on asyncio protocols (default); "
        "aiohttp: aiohttp.ClientSession, about 3x more client CPU per request",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run", default=str(int(time.time())), help="tag in the contacts")
    args = p.parse_args(argv)
    host = urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("open_loop: only loopback targets")
    common = dict(
        url=args.url,
        rate=args.rate / args.workers,
        duration=args.duration,
        connections=args.connections,
        arrivals=args.arrivals,
        max_outstanding=args.max_outstanding,
        grace=args.grace,
        run=args.run,
        seed=args.seed,
        start_at=time.time() + 1.0 + 0.3 * args.workers,
        engine=args.engine,
    )
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = []
    for w in range(args.workers):
        phase = w / args.rate  # uniform arrivals interleave across workers
        proc = ctx.Process(target=_worker, args=(common | {"phase": phase}, w, out))
        proc.start()
        procs.append(proc)
    raws = []
    while len(raws) < len(procs):
        try:
            raws.append(out.get(timeout=1.0)[1])
        except queue.Empty:
            if any(not p.is_alive() and p.exitcode for p in procs):
                for proc in procs:
                    proc.kill()
                raise SystemExit("open_loop: a worker failed") from None
    for proc in procs:
        proc.join()
    result = summarize(raws, args.rate, args.duration)
    result.update(
        workers=args.workers,
        connections_per_worker=args.connections,
        arrivals=args.arrivals,
        engine=args.engine,
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
