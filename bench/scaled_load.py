"""Scaled-out benchmark: 1 gateway + 2 workers on RabbitMQ and PostgreSQL, beside the bare ceiling.

One run: the bare aiohttp handler under wrk (the ceiling); then a fresh PostgreSQL database
and RabbitMQ vhost, `intake-hub migrate`, one `gateway` and two `worker` processes; wrk against
the gateway (accepted/s, p50/p99), the time until the workers stored everything (stored/s),
the received->stored latency histogram summed over the workers, and an open-loop run at a
fixed rate (default 1,000/s) for p99 received->stored at that rate. Per stored message it
reports the database's row writes and scans (pg_stat deltas) and the CPU milliseconds of
the gateway, the workers and PostgreSQL. With `--backlog S`, a second setup takes S seconds
of load with no worker running, then times two workers draining it (the workers' rate,
not the gateway's). Only loopback is used.

    .venv/bin/python bench/scaled_load.py --out /tmp/scaled.json [--backlog 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import web_load as wl  # bench/ is on sys.path when this file runs as a script

PG = "postgres://postgres@127.0.0.1:5432"
STATS_SETTLE_S = 11.0
AMQP = "amqp://guest:guest@127.0.0.1:5672"
_BUCKET = re.compile(
    r'^intake_hub_received_to_stored_seconds_bucket\{channel="web",le="([^"]+)"\}\s+([0-9.eE+]+)$',
    re.MULTILINE,
)


def psql(sql: str) -> None:
    """Run one statement as the local superuser."""
    subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True, capture_output=True)


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl quietly."""
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@contextlib.contextmanager
def backends() -> Iterator[tuple[str, str]]:
    """A throw-away PostgreSQL database and RabbitMQ vhost, removed afterwards."""
    name = f"ih_bench_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{name}"')
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield f"{PG}/{name}", f"{AMQP}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)
        psql(f'DROP DATABASE "{name}" WITH (FORCE)')


def db_counters(db_url: str) -> dict[str, float]:
    """Transactions and per-table scans/writes of the bench database so far (pg_stat views).

    pg_stat_statements needs a server restart to load, which a shared server cannot have;
    these views need nothing. A scan is one index or sequential scan: on PostgreSQL 15 each
    key of an IN list and each foreign-key check counts, so scans measure index work.
    """
    name = db_url.rsplit("/", 1)[1]
    tables = "FROM pg_stat_user_tables"
    sql = (
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
        f" UNION ALL SELECT coalesce(sum(coalesce(idx_scan, 0) + seq_scan), 0) {tables}"
        f" UNION ALL SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) {tables}"
    )
    done = subprocess.run(
        ["psql", f"{PG}/{name}", "-Atc", sql], check=True, capture_output=True, text=True
    )
    xacts, scans, writes = (float(x) for x in done.stdout.split()[-3:])
    per_table = subprocess.run(
        [
            "psql",
            f"{PG}/{name}",
            "-AtF",
            " ",
            "-c",
            "SELECT relname, coalesce(idx_scan, 0) + seq_scan,"
            f" n_tup_ins + n_tup_upd + n_tup_del {tables}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    found = {"xacts": xacts, "scans": scans, "row_writes": writes}
    for line in per_table.stdout.split("\n"):
        if line:
            table, scanned, written = line.split()
            found[f"scans.{table}"] = float(scanned)
            found[f"writes.{table}"] = float(written)
    return found


def pg_backends(db_url: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to the bench database now."""
    name = db_url.rsplit("/", 1)[1]
    done = subprocess.run(
        [
            "psql",
            f"{PG}/{name}",
            "-Atc",
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [int(p) for p in done.stdout.split()]



class CpuOf:
    """CPU seconds the workers' processes and the bench database's backends used in a window.

    Unlike stored/s, CPU per message hardly moves when other engineers load the box: it is
    what the setup would need on cores of its own. A backend opened in the window counts
    from zero; the broker is shared with everyone, so it is left out.
    """

    def __init__(self, workers: list[int], db_url: str) -> None:
        self.workers, self.db_url = workers, db_url
        self.start = self._now()

    def _now(self) -> dict[str, dict[int, float]]:
        return {
            "workers": {p: wl.cpu_s(p) for p in self.workers},
            "postgres": {p: wl.cpu_s(p) for p in pg_backends(self.db_url)},
        }

    def used(self) -> dict[str, float]:
        """CPU seconds per group since the meter started."""
        end = self._now()
        return {
            group: sum(cpu - self.start[group].get(pid, 0.0) for pid, cpu in pids.items())
            for group, pids in end.items()
        }


def stored_total(ports: list[int]) -> float:
    """stored_total of the web channel summed over the workers."""
    total = 0.0
    for port in ports:
        found = wl.counters(port)
        total += found[1] if found else 0.0
    return total


def buckets(ports: list[int]) -> dict[float, float]:
    """The received->stored histogram's cumulative buckets, summed over the workers."""
    summed: dict[float, float] = {}
    for port in ports:
        status, body = wl.http_get(port, "/metrics")
        if status != 200:
            continue
        for le, count in _BUCKET.findall(body.decode()):
            bound = float("inf") if le == "+Inf" else float(le)
            summed[bound] = summed.get(bound, 0.0) + float(count)
    return summed


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The upper bucket bound under which a fraction `q` of the new observations fall."""
    diff = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = diff[-1][1] if diff else 0.0
    if total <= 0:
        return None
    for le, count in diff:
        if count >= q * total:
            return le
    return None


def wait_all_stored(ports: list[int], target: float, timeout: float) -> tuple[float, bool]:
    """Poll the workers until they stored `target`; (monotonic time seen, reached)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stored_total(ports) >= target:
            return time.monotonic(), True
        time.sleep(0.05)
    return time.monotonic(), False


def role_env(home: Path, port: int, db: str, amqp: str, node: int) -> dict[str, str]:
    """The environment of one gateway or worker process."""
    return wl.service_env(home, port) | {
        "INTAKE_HUB_DATABASE_URL": db,
        "INTAKE_HUB_AMQP_URL": amqp,
        "INTAKE_HUB_NODE_ID": str(node),
        "INTAKE_HUB_SECRET_KEY": "bench-secret-0123456789abcdef",
    }


def start(
    stack: contextlib.ExitStack, role: str, home: Path, db: str, amqp: str, node: int
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start one `intake-hub gateway` or `worker` and wait until it is ready."""
    exe = str(Path(wl.PY).with_name("intake-hub"))
    port = wl.free_port()
    proc = stack.enter_context(
        wl.server(
            [exe, role],
            port,
            "/readyz",
            env=role_env(home / f"{role}{node}", port, db, amqp, node),
            log_path=home / f"{role}{node}.log",
            timeout=60,
        )
    )
    return port, proc


def bench_backlog(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """What the workers store per second draining a backlog: the gateway is not the limit.

    The workers are stopped (SIGSTOP) while the gateway takes `--backlog` seconds of wrk
    load, which RabbitMQ holds; the rate and the CPU count from SIGCONT until everything is
    stored. Full prefetch windows make full persist batches here.
    """
    exe = str(Path(wl.PY).with_name("intake-hub"))
    with backends() as (db, amqp), contextlib.ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix="backlog-", dir=workdir))
        subprocess.run(
            [exe, "migrate"], env=role_env(home, 0, db, amqp, 0), check=True, capture_output=True
        )
        gw_port, _ = start(stack, "gateway", home, db, amqp, 1)
        started = [start(stack, "worker", home, db, amqp, 100 + i) for i in range(args.workers)]
        ports = [port for port, _ in started]
        base = stored_total(ports)
        for _, proc in started:
            proc.send_signal(signal.SIGSTOP)
        try:
            wl.run_wrk(gw_port, args, args.backlog, None, "backlog")
        finally:
            cpu = CpuOf([proc.pid for _, proc in started], db)
            for _, proc in started:
                proc.send_signal(signal.SIGCONT)
        t0 = time.monotonic()
        received = (wl.counters(gw_port) or (0.0, 0.0))[0]
        t_seen, done = wait_all_stored(ports, base + received, args.drain_timeout)
        used = cpu.used()
        n = received
        return {
            "backlog": int(n),
            "caught_up": done,
            "stored_per_s": round(n / (t_seen - t0), 1) if done and n else None,
            "cpu_ms_per_message": {
                k: round(v * 1000 / n, 3) if n else None for k, v in used.items()
            },
        }


def bench_scaled(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """1 gateway + N workers under the wrk load, then a fixed-rate run."""
    exe = str(Path(wl.PY).with_name("intake-hub"))
    with backends() as (db, amqp), contextlib.ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix="scaled-", dir=workdir))
        subprocess.run(
            [exe, "migrate"], env=role_env(home, 0, db, amqp, 0), check=True, capture_output=True
        )
        gw_port, gateway = start(stack, "gateway", home, db, amqp, 1)
        started = [start(stack, "worker", home, db, amqp, 100 + i) for i in range(args.workers)]
        worker_ports = [port for port, _ in started]
        worker_pids = [proc.pid for _, proc in started]
        if args.warmup > 0:
            wl.run_wrk(gw_port, args, args.warmup, None, "warm")
            received = (wl.counters(gw_port) or (0.0, 0.0))[0]
            wait_all_stored(worker_ports, received, args.drain_timeout)
        base_received = (wl.counters(gw_port) or (0.0, 0.0))[0]
        base_stored = stored_total(worker_ports)
        before = buckets(worker_ports)
        # An idle backend reports its pending statistics within 10 s (PGSTAT_IDLE_INTERVAL).
        time.sleep(STATS_SETTLE_S)
        db_before = db_counters(db)
        meter = wl.CpuMeter(gateway.pid).start()
        cpu = CpuOf(worker_pids, db)
        gateway_cpu = wl.cpu_s(gateway.pid)
        t0 = time.monotonic()
        r = wl.run_wrk(gw_port, args, args.duration, None, "scaled")
        t_end = time.monotonic()
        r["cpu_gateway"] = meter.stop()
        received = (wl.counters(gw_port) or (0.0, 0.0))[0]
        t_seen, caught_up = wait_all_stored(
            worker_ports, base_stored + (received - base_received), args.drain_timeout
        )
        used = cpu.used() | {"gateway": wl.cpu_s(gateway.pid) - gateway_cpu}
        after = buckets(worker_ports)
        n = received - base_received
        # Milliseconds of CPU per stored message, from the load's start until all are stored.
        r["cpu_ms_per_message"] = {
            k: round(v * 1000 / n, 3) if n else None for k, v in used.items()
        }
        window = max(t_seen, t_end) - t0
        time.sleep(STATS_SETTLE_S)
        db_after = db_counters(db)
        r["db_per_message"] = {
            k: round((db_after[k] - db_before[k]) / n, 2) if n else None for k in db_after
        }
        r.update(
            received=int(n),
            stored=int(stored_total(worker_ports) - base_stored),
            caught_up=caught_up,
            drain_s=round(t_seen - t_end, 3),
            stored_per_s=round(n / window, 1) if caught_up else None,
            p50_received_to_stored_s=quantile(before, after, 0.5),
            p99_received_to_stored_s=quantile(before, after, 0.99),
        )
        # The fixed-rate run: p99 received->stored at a rate the setup should sustain.
        before = buckets(worker_ports)
        base_stored = stored_total(worker_ports)
        base_received = (wl.counters(gw_port) or (0.0, 0.0))[0]
        ol = wl.run_open_loop(gw_port, args.rate, args.latency_duration, None, args, "scaled-ol")
        received = (wl.counters(gw_port) or (0.0, 0.0))[0]
        wait_all_stored(worker_ports, base_stored + received - base_received, args.drain_timeout)
        after = buckets(worker_ports)
        ol.update(
            p50_received_to_stored_s=quantile(before, after, 0.5),
            p99_received_to_stored_s=quantile(before, after, 0.99),
        )
        r["open_loop"] = ol
    return r


def main(argv: list[str] | None = None) -> int:
    """Run the bare ceiling and the scaled-out setup; print a summary, write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-timeout", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=1000.0, help="open-loop requests/s")
    p.add_argument("--latency-duration", type=float, default=10.0)
    p.add_argument("--drain-timeout", type=float, default=60.0)
    p.add_argument("--ol-connections", type=int, default=128)
    p.add_argument("--ol-workers", type=int, default=1)
    p.add_argument("--ol-engine", choices=("raw", "aiohttp"), default="raw")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--load-cpu", default="1")
    p.add_argument("--backlog", type=float, default=0.0, help="s of load to drain; 0 skips")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ih-scaled-") as tmp:
        wl.log("bare server, unpinned")
        bare = wl.bench_bare(args, pinned=False)
        wl.log(f"  {bare['req_per_s']:.0f} req/s")
        wl.log(f"1 gateway + {args.workers} workers on RabbitMQ + PostgreSQL")
        scaled = bench_scaled(args, Path(tmp))
        if args.backlog > 0:
            wl.log(f"a {args.backlog:g} s backlog drained by {args.workers} workers")
            scaled["backlog"] = bench_backlog(args, Path(tmp))
    ol = scaled["open_loop"]
    print(f"bare ceiling        {bare['req_per_s']:>8.0f} req/s  p99 {bare['p99_ms']} ms")
    print(
        f"scaled accepted     {scaled['ok_per_s']:>8.0f} /s     p50 {scaled['p50_ms']} ms"
        f"  p99 {scaled['p99_ms']} ms"
    )
    print(
        f"scaled stored       {scaled['stored_per_s'] or 0:>8.0f} /s     "
        f"received->stored p50 <= {scaled['p50_received_to_stored_s']} s, "
        f"p99 <= {scaled['p99_received_to_stored_s']} s (caught up: {scaled['caught_up']})"
    )
    per = scaled["db_per_message"]
    print(
        f"database per message: {per['xacts']} transactions, {per['scans']} table scans, "
        f"{per['row_writes']} row writes"
    )
    cpu = scaled["cpu_ms_per_message"]
    print(
        f"CPU per message: gateway {cpu['gateway']} ms, workers {cpu['workers']} ms, "
        f"PostgreSQL {cpu['postgres']} ms"
    )
    print(
        f"open loop {args.rate:.0f}/s  accept p99 {ol.get('p99_ms')} ms, received->stored "
        f"p99 <= {ol['p99_received_to_stored_s']} s"
    )
    if "backlog" in scaled:
        b = scaled["backlog"]
        print(
            f"backlog of {b['backlog']} drained at {b['stored_per_s']} stored/s; CPU per message: "
            f"workers {b['cpu_ms_per_message']['workers']} ms, "
            f"PostgreSQL {b['cpu_ms_per_message']['postgres']} ms"
        )
    if args.out:
        args.out.write_text(json.dumps({"bare": bare, "scaled": scaled}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
