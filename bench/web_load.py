"""Web intake benchmark: the bare aiohttp ceiling beside `intake-hub serve`, in one run.

1. bare:    bench/bare_server.py driven by wrk (closed loop) -> req/s, p50/p99.
2. service: `intake-hub serve` on a fresh SQLite home, the same wrk load -> accepted/s
            (2xx/s), p50/p99 acceptance latency; then /metrics is polled until
            stored_total == received_total -> stored/s; the database is checked.
3. latency: the service at a fixed rate (half the bare ceiling, or --rate) with the
            open-loop client bench/open_loop.py -> p50/p99 from the scheduled send time,
            and whether it kept up; the same load on the bare server as a control.

Load generator and server share this machine's cores; with --pin both (default) every
wrk run happens twice: unpinned, and pinned (server on --server-cpu, load on --load-cpu).

    .venv/bin/python bench/web_load.py --out bench/results/latest.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import profile_summary  # bench/ is on sys.path when this file runs as a script

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
INTAKE = "/api/v1/web/messages"
LOOPBACK = "127.0.0.1"
_METRIC = re.compile(
    r'^intake_hub_(received|stored)_total\{channel="web"\}\s+([0-9.eE+]+)$', re.MULTILINE
)


def log(msg: str) -> None:
    """Progress on stderr; results go to the table and the JSON file."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET from loopback; (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def counters(port: int) -> tuple[float, float] | None:
    """(received, stored) of the web channel from /metrics."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        return None
    found = dict.fromkeys(("received", "stored"), 0.0)
    for name, value in _METRIC.findall(body.decode()):
        found[name] = float(value)
    return found["received"], found["stored"]


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (0 once it is gone)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / _TICK  # utime + stime, all threads


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants now (the processes a supervisor started)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in process_tree(int(child)))]


@dataclass
class CpuMeter:
    """CPU seconds over a window: the server, the load generator, this harness, and the rest.

    The box is shared; `other_s` is what processes outside the benchmark used in the window
    (tests of other engineers, say). A large value means the numbers are disturbed.
    """

    server_pid: int
    t: float = 0.0
    busy: float = 0.0
    server: float = 0.0
    children: float = 0.0
    me: float = 0.0
    iowait: float = 0.0

    @staticmethod
    def _busy() -> float:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(f) - f[3] - f[4]) / _TICK  # all but idle and iowait

    def _server(self) -> float:
        """The server's CPU: its own and its processes' (a `serve` of several), all threads."""
        return sum(cpu_s(pid) for pid in process_tree(self.server_pid))

    def start(self) -> CpuMeter:
        self.t, self.busy, self.server = time.monotonic(), self._busy(), self._server()
        self.iowait = self._iowait()
        ch, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(0)
        self.children, self.me = ch.ru_utime + ch.ru_stime, me.ru_utime + me.ru_stime
        return self

    def stop(self) -> dict[str, float]:
        """Call after the load generator was waited for, before the server stops."""
        window = time.monotonic() - self.t
        busy, server = self._busy() - self.busy, self._server() - self.server
        ch, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(0)
        load = ch.ru_utime + ch.ru_stime - self.children
        harness = me.ru_utime + me.ru_stime - self.me
        return {
            "window_s": round(window, 2),
            "busy_s": round(busy, 2),
            "server_s": round(server, 2),
            "load_s": round(load, 2),
            "harness_s": round(harness, 2),
            "other_s": round(max(0.0, busy - server - load - harness), 2),
            "server_cores": round(server / window, 2),
            "iowait_s": round(self._iowait() - self.iowait, 2),
        }

    @staticmethod
    def _iowait() -> float:
        return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[5]) / _TICK


def pin(cpu: str | None) -> list[str]:
    """The taskset prefix, or nothing."""
    return ["taskset", "-c", cpu] if cpu is not None else []


@contextlib.contextmanager
def server(
    cmd: list[str],
    port: int,
    ready_path: str,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until `ready_path` answers 200, stop it with SIGINT after."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while http_get(port, ready_path, timeout=1.0)[0] != 200:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[-1]} exited with {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd)} not ready after {timeout:.0f}s")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log_path:
            out.close()  # type: ignore[union-attr]


def run_wrk(
    port: int, args: argparse.Namespace, duration: float, cpu: str | None, tag: str
) -> dict[str, Any]:
    """One wrk run with post_message.lua; the numbers of its BENCH_JSON line."""
    cmd = [
        *pin(cpu),
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--latency",
        f"--timeout={args.wrk_timeout:g}s",
        "-s",
        str(BENCH / "post_message.lua"),
        f"http://{LOOPBACK}:{port}",
    ]
    env = os.environ | {"BENCH_CORPUS": str(BENCH / "corpus.txt"), "BENCH_RUN": tag}
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 30, check=True
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no BENCH_JSON from wrk:\n{proc.stdout}\n{proc.stderr}")
    r: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    secs = r["duration_us"] / 1e6
    ok = r["requests"] - r["status_errors"]
    r.update(
        command=" ".join(cmd),
        seconds=round(secs, 3),
        ok=ok,
        ok_per_s=round(ok / secs, 1),
        req_per_s=round(r["requests"] / secs, 1),
        p50_ms=round(r["p50_us"] / 1000, 2),
        p99_ms=round(r["p99_us"] / 1000, 2),
    )
    return r


def run_open_loop(
    port: int, rate: float, duration: float, cpu: str | None, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    """One run of bench/open_loop.py in its own process."""
    cmd = [
        *pin(cpu),
        PY,
        str(BENCH / "open_loop.py"),
        "--url",
        f"http://{LOOPBACK}:{port}",
        "--rate",
        f"{rate:.0f}",
        "--duration",
        f"{duration:g}",
        "--connections",
        str(args.ol_connections),
        "--workers",
        str(args.ol_workers),
        "--engine",
        args.ol_engine,
        "--run",
        tag,
        "--grace",
        "5",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"open_loop failed:\n{proc.stderr}")
    r: dict[str, Any] = json.loads(proc.stdout)
    r["command"] = " ".join(cmd)
    return r


@dataclass
class Poller:
    """Polls /metrics once a second in a thread: the backlog (received - stored) over time."""

    port: int
    t0: float
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            c = counters(self.port)
            if c:
                self.samples.append((round(time.monotonic() - self.t0, 2), *c))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_stored(port: int, timeout: float) -> tuple[float, float, float, bool]:
    """Poll until stored == received: (received, stored, when it was seen, caught up)."""
    deadline = time.monotonic() + timeout
    while True:
        c = counters(port)
        now = time.monotonic()
        if c and c[1] >= c[0]:
            return c[0], c[1], now, True
        if now > deadline:
            r, s = c or (0.0, 0.0)
            return r, s, now, False
        time.sleep(0.05)


def db_counts(path: Path) -> dict[str, int | str]:
    """Inbound web messages and tickets, read straight from the SQLite file."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            msgs = con.execute(
                "SELECT count(*) FROM message WHERE direction = 'in' AND channel = 'web'"
            ).fetchone()[0]
            tickets = con.execute("SELECT count(*) FROM ticket").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"messages_in": msgs, "tickets": tickets}


def bench_connectors(home: Path, admission: bool = False) -> Path:
    """The shipped channels, the web one with its per-client limits raised past the load.

    The load generator is one address sending as fast as it can: counted against the
    limits like any client (their cost is in the figures), never refused by them.
    Admission control is off unless asked for: a throughput run measures what the
    pipeline stores, not the door.
    """
    out = home / "connectors"
    out.mkdir(parents=True, exist_ok=True)
    for shipped in (ROOT / "connectors").glob("*.yaml"):
        (out / shipped.name).write_bytes(shipped.read_bytes())
    huge = "{count: 1000000, per: second}"
    (out / "web.yaml").write_text(
        "type: web\nname: web\nlimits:\n"
        + ("" if admission else "  max_backlog: 100000000\n")
        + "".join(f"  {k}: {huge}\n" for k in ("messages_per_ip", "messages_per_contact"))
    )
    return out


def service_env(home: Path, port: int, admission: bool = False) -> dict[str, str]:
    """The service's environment: a fresh home, loopback only."""
    return os.environ | {
        "INTAKE_HUB_CONNECTORS_DIR": str(bench_connectors(home, admission)),
        "INTAKE_HUB_HOME": str(home),
        "INTAKE_HUB_HTTP_PORT": str(port),
        "INTAKE_HUB_HTTP_HOST": LOOPBACK,
        "INTAKE_HUB_PUBLIC_URL": f"http://{LOOPBACK}:{port}",
    }


def service_cmd(cpu: str | None) -> list[str]:
    """`intake-hub serve --quiet`, optionally pinned."""
    exe = Path(PY).with_name("intake-hub")
    return [*pin(cpu), str(exe), "serve", "--quiet"]


def spy_on(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy (collapsed stacks, 200 Hz, not pausing the target) until spy_stop."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(PY).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--duration",
            "600",
            "--nonblocking",
            "--format",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def spy_stop(spy: subprocess.Popen[bytes] | None) -> None:
    """Stop py-spy with SIGINT: it writes what it has."""
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        _, err = spy.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode not in (0, -signal.SIGINT):
        log(f"py-spy exited {spy.returncode}: {err.decode(errors='replace').strip()[-400:]}")


def bench_bare(args: argparse.Namespace, pinned: bool) -> dict[str, Any]:
    """The ceiling: bare_server.py under wrk."""
    port = free_port()
    scpu, lcpu = (args.server_cpu, args.load_cpu) if pinned else (None, None)
    cmd = [*pin(scpu), PY, str(BENCH / "bare_server.py"), "--port", str(port)]
    with server(cmd, port, "/healthz") as proc:
        if args.warmup > 0:
            run_wrk(port, args, args.warmup, lcpu, "warm")
        meter = CpuMeter(proc.pid).start()
        r = run_wrk(port, args, args.duration, lcpu, f"bare{int(pinned)}")
        r["cpu"] = meter.stop()
    r["server_command"] = " ".join(cmd)
    return r


def bench_service(
    args: argparse.Namespace, pinned: bool, workdir: Path, profile: Path | None = None
) -> dict[str, Any]:
    """The service under the same wrk load, then drained, counted and checked."""
    port = free_port()
    scpu, lcpu = (args.server_cpu, args.load_cpu) if pinned else (None, None)
    home = Path(tempfile.mkdtemp(prefix=f"svc{int(pinned)}-", dir=workdir))
    cmd = service_cmd(scpu)
    with server(
        cmd, port, "/readyz", env=service_env(home, port), log_path=home / "serve.log", timeout=60
    ) as proc:
        base_db: dict[str, Any] = {"messages_in": 0, "tickets": 0}
        if args.warmup > 0:
            run_wrk(port, args, args.warmup, lcpu, f"w{int(pinned)}")
            wait_stored(port, args.drain_timeout)
            base_db = db_counts(home / "intake-hub.sqlite3")
        base = counters(port) or (0.0, 0.0)
        spy = spy_on(proc.pid, profile / "service-load.txt") if profile else None
        meter = CpuMeter(proc.pid).start()
        t0 = time.monotonic()
        poll = Poller(port, t0)
        r = run_wrk(port, args, args.duration, lcpu, f"svc{int(pinned)}")
        t_load_end = time.monotonic()
        r["cpu"] = meter.stop()
        drain_meter = CpuMeter(proc.pid).start()
        if profile:
            spy_stop(spy)
            spy = spy_on(proc.pid, profile / "service-drain.txt")
        received, stored, t_seen, caught_up = wait_stored(port, args.drain_timeout)
        r["cpu_drain"] = drain_meter.stop()
        poll.stop()
        spy_stop(spy)
        db = db_counts(home / "intake-hub.sqlite3")
    n_received = received - base[0]
    n_stored = stored - base[1]
    store_window = max(t_seen, t_load_end) - t0 if caught_up else None
    db_new = (
        db["messages_in"] - base_db["messages_in"]
        if "messages_in" in db and "messages_in" in base_db
        else None
    )
    r.update(
        server_command=" ".join(cmd),
        home=str(home),
        received=int(n_received),
        stored=int(n_stored),
        caught_up=caught_up,
        drain_s=round(t_seen - t_load_end, 3),
        stored_window_s=round(store_window, 3) if store_window else None,
        stored_per_s=round(n_stored / store_window, 1) if store_window else None,
        stored_per_s_lower_bound=(None if caught_up else round(n_stored / (t_seen - t0), 1)),
        backlog=[(t, r_ - base[0], s - base[1]) for t, r_, s in poll.samples],
        db=db,
        db_messages_new=db_new,
        # wrk stops counting at -d while some answered requests are still in flight,
        # so the service may have accepted up to -c more than wrk saw.
        db_check=(
            db_new is not None
            and db_new == int(n_received)
            and 0 <= db_new - r["ok"] <= args.connections
        ),
    )
    return r


def bench_latency(
    args: argparse.Namespace, rate: float, pinned: bool, workdir: Path, control: bool = True
) -> dict[str, Any]:
    """The service (and the bare control) at a fixed rate with the open-loop client."""
    scpu, lcpu = (args.server_cpu, args.load_cpu) if pinned else (None, None)
    out: dict[str, Any] = {"rate": round(rate), "pinned": pinned}
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="lat-", dir=workdir))
    with server(
        service_cmd(scpu),
        port,
        "/readyz",
        env=service_env(home, port),
        log_path=home / "serve.log",
        timeout=60,
    ) as proc:
        meter = CpuMeter(proc.pid).start()
        t0 = time.monotonic()
        poll = Poller(port, t0)
        r = run_open_loop(port, rate, args.latency_duration, lcpu, args, "lat")
        t_end = time.monotonic()
        cpu = meter.stop()
        received, stored, t_seen, caught_up = wait_stored(port, args.drain_timeout)
        poll.stop()
    backlog_end = max((rc - st for t, rc, st in poll.samples if t <= t_end - t0), default=0)
    r.update(
        received=int(received),
        stored=int(stored),
        pipeline_caught_up=caught_up,
        drain_after_load_s=round(t_seen - t_end, 3),
        max_backlog=int(backlog_end),
        backlog=poll.samples,
        cpu=cpu,
    )
    r["kept_up"] = kept_up(r, rate)
    out["service"] = r
    if control and args.latency_control:
        port = free_port()
        cmd = [*pin(scpu), PY, str(BENCH / "bare_server.py"), "--port", str(port)]
        with server(cmd, port, "/healthz") as proc:
            meter = CpuMeter(proc.pid).start()
            c = run_open_loop(port, rate, args.latency_duration, lcpu, args, "ctl")
            c["cpu"] = meter.stop()
        c["kept_up"] = kept_up(c, rate)
        out["bare_control"] = c
    return out


def kept_up(r: dict[str, Any], rate: float) -> dict[str, Any]:
    """Did the server keep pace with the schedule? And did the client?"""
    all_ok = r["ok"] == r["scheduled"] and not (r["dropped"] or r["unfinished"] or r["errors"])
    p99 = r["latency_ms"]["99"]
    thirds = [x for x in r["p99_by_third_ms"] if x is not None]
    # A queue that grows shows as p99 rising from the first third to the last.
    growing = len(thirds) == 3 and thirds[2] > 3 * max(thirds[0], 5.0)
    client_lag = r["dispatch_lag_ms"]["99"] or 0.0
    verdict = {
        "all_answered_2xx": all_ok,
        "no_growing_queue": not growing,
        "pipeline_drained": r.get("pipeline_caught_up", True)
        and r.get("drain_after_load_s", 0.0) < 2.0,
        "client_on_schedule": client_lag < 5.0,
        "p99_ms": p99,
    }
    verdict["server_kept_up"] = bool(all_ok and not growing and verdict["pipeline_drained"])
    return verdict


def machine() -> dict[str, Any]:
    """nproc, CPU model, versions."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "?",
    }


def _cpu_cols(r: dict[str, Any]) -> tuple[str, str]:
    c = r.get("cpu")
    if not c:
        return "?", "?"
    return f"{c['server_cores']:.2f}", f"{c['other_s'] / c['window_s']:.2f}"


def _latency_lines(results: dict[str, Any], key: str) -> list[str]:
    lat = results.get(key)
    if not lat:
        return []
    lines = [""]
    mode = "pinned" if lat["pinned"] else "unpinned"
    lines.append(
        f"open loop at {lat['rate']} req/s ({mode}, "
        f"{results['args']['latency_duration']:g}s, latency from scheduled send):"
    )
    for name in ("service", "bare_control"):
        r = lat.get(name)
        if not r:
            continue
        k = r["kept_up"]
        lines.append(
            f"  {name:<13} p50 {r['latency_ms']['50']} ms  p99 {r['latency_ms']['99']} ms"
            f"  max {r['latency_ms']['max']} ms  2xx {r['ok']}/{r['scheduled']}"
            f"  achieved {r['achieved_rate']}/s"
            f"  kept up: {'yes' if k['server_kept_up'] else 'NO'}"
            f"  (client lag p99 {r['dispatch_lag_ms']['99']} ms,"
            f" other cores {_cpu_cols(r)[1]})"
        )
    return lines


def table(results: dict[str, Any]) -> str:
    """The human summary."""
    rows = [
        (
            "run",
            "pinned",
            "req/s",
            "2xx/s",
            "non-2xx",
            "p50 ms",
            "p99 ms",
            "stored/s",
            "drain s",
            "db ok",
            "srv cores",
            "other cores",
        )
    ]
    for mode in ("unpinned", "pinned"):
        b = results.get("bare", {}).get(mode)
        s = results.get("service", {}).get(mode)
        if b:
            rows.append(
                (
                    "bare (ceiling)",
                    mode,
                    f"{b['req_per_s']:.0f}",
                    f"{b['ok_per_s']:.0f}",
                    str(b["status_errors"]),
                    f"{b['p50_ms']:.2f}",
                    f"{b['p99_ms']:.2f}",
                    "-",
                    "-",
                    "-",
                    *_cpu_cols(b),
                )
            )
        if s:
            stored = (
                f"{s['stored_per_s']:.0f}"
                if s["stored_per_s"]
                else (
                    f">{s['stored_per_s_lower_bound']:.0f}?"
                    if s["stored_per_s_lower_bound"]
                    else "n/a"
                )
            )
            rows.append(
                (
                    "service",
                    mode,
                    f"{s['req_per_s']:.0f}",
                    f"{s['ok_per_s']:.0f}",
                    str(s["status_errors"]),
                    f"{s['p50_ms']:.2f}",
                    f"{s['p99_ms']:.2f}",
                    stored,
                    f"{s['drain_s']:.2f}",
                    "yes" if s["db_check"] else "NO",
                    *_cpu_cols(s),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.rjust(w) if i >= 2 else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    for key in ("latency", "latency_sustainable"):
        lines += _latency_lines(results, key)
    lines.append("")
    lines.append(
        "srv cores: CPU the server used during the load (1.00 = one core); other cores:"
        " CPU used by processes outside the benchmark (noise, should be ~0)"
    )
    g = results.get("goal")
    if g:
        lines.append("")
        goal = (
            f"goal: stored/s >= 20% of bare req/s ({g['stored_target']:.0f}): "
            f"{'MET' if g['throughput_met'] else 'NOT met'} ({g['stored_per_s']})"
        )
        if g["rate"] is not None:  # no latency run (--skip latency): no latency verdict
            goal += (
                f";  p99 < 50 ms at {g['rate']:.0f}/s: "
                f"{'MET' if g['latency_met'] else 'NOT met'} ({g['p99_ms']} ms)"
            )
        lines.append(goal)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every part, print the table, write the JSON."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before each run")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--wrk-timeout", type=float, default=10.0, help="wrk socket timeout, s")
    p.add_argument(
        "--pin",
        choices=("both", "off", "on"),
        default="both",
        help="taskset: unpinned, pinned (server/load CPUs), or both",
    )
    p.add_argument("--server-cpu", default="0", help="CPU list of the server when pinned")
    p.add_argument("--load-cpu", default="1", help="CPU list of the load generator when pinned")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=45.0,
        help="seconds to wait for stored_total to reach received_total",
    )
    p.add_argument("--rate", type=float, help="open-loop rate; default half the bare ceiling")
    p.add_argument("--latency-duration", type=float, default=10.0, help="open-loop seconds")
    p.add_argument(
        "--sustainable-fraction",
        type=float,
        default=0.8,
        help="also run the open loop at this fraction of the service's measured stored/s (0: skip)",
    )
    p.add_argument(
        "--no-latency-control",
        dest="latency_control",
        action="store_false",
        help="skip the open-loop run against the bare server",
    )
    p.add_argument("--ol-connections", type=int, default=128, help="open-loop pool size")
    p.add_argument("--ol-workers", type=int, default=1, help="open-loop client processes")
    p.add_argument("--ol-engine", choices=("raw", "aiohttp"), default="raw")
    p.add_argument("--skip", action="append", default=[], choices=("bare", "service", "latency"))
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="add a service run under py-spy (not counted in the table): collapsed "
        "stacks and summaries of the load and the drain phase into DIR",
    )
    p.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    p.add_argument("--keep", action="store_true", help="keep the service homes (SQLite files)")
    args = p.parse_args(argv)

    modes = {"both": [False, True], "off": [False], "on": [True]}[args.pin]
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "bare": {},
        "service": {},
    }
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    try:
        for pinned in modes:
            name = "pinned" if pinned else "unpinned"
            if "bare" not in args.skip:
                log(f"bare server, {name}: wrk {args.duration:g}s")
                results["bare"][name] = bench_bare(args, pinned)
                log(f"  {results['bare'][name]['req_per_s']:.0f} req/s")
            if "service" not in args.skip:
                log(f"service, {name}: wrk {args.duration:g}s, then drain")
                s = results["service"][name] = bench_service(args, pinned, workdir)
                log(
                    f"  {s['ok_per_s']:.0f} accepted/s, stored/s {s['stored_per_s']}, "
                    f"db check {'ok' if s['db_check'] else 'FAILED'}"
                )
        lat_pinned = modes[-1]
        lat_mode = "pinned" if lat_pinned else "unpinned"
        ceiling = results["bare"].get(lat_mode, {}).get("req_per_s")
        if "latency" not in args.skip:
            rate = args.rate or (ceiling / 2 if ceiling else None)
            if rate is None:
                log("latency run skipped: no --rate and no bare ceiling")
            else:
                log(f"open loop at {rate:.0f}/s, {lat_mode}, {args.latency_duration:g}s")
                results["latency"] = bench_latency(args, rate, lat_pinned, workdir)
            svc_run = results["service"].get(lat_mode)
            sustainable = (svc_run or {}).get("stored_per_s") or (svc_run or {}).get(
                "stored_per_s_lower_bound"
            )
            if args.sustainable_fraction > 0 and sustainable:
                low = sustainable * args.sustainable_fraction
                log(
                    f"open loop at {low:.0f}/s ({args.sustainable_fraction:g} x the service's "
                    f"stored/s), {lat_mode}, {args.latency_duration:g}s"
                )
                results["latency_sustainable"] = bench_latency(
                    args, low, lat_pinned, workdir, control=False
                )
        if args.profile:
            log(f"profiled service run (unpinned, py-spy) -> {args.profile}/")
            prof = bench_service(args, False, workdir, args.profile)
            results["profiled_run"] = {
                k: prof[k]
                for k in (
                    "ok_per_s",
                    "p50_ms",
                    "p99_ms",
                    "stored_per_s",
                    "drain_s",
                    "cpu",
                    "cpu_drain",
                )
            }
            for phase in ("load", "drain"):
                txt = args.profile / f"service-{phase}.txt"
                if txt.exists():
                    summary = profile_summary.report(txt, 30)
                    (args.profile / f"service-{phase}.summary.txt").write_text(summary + "\n")
        svc = results["service"].get(lat_mode)
        lat = results.get("latency", {}).get("service")
        if ceiling and svc:
            results["goal"] = {
                "mode": lat_mode,
                "bare_req_per_s": ceiling,
                "stored_target": 0.2 * ceiling,
                "stored_per_s": svc["stored_per_s"],
                "throughput_met": bool(
                    svc["stored_per_s"] and svc["stored_per_s"] >= 0.2 * ceiling
                ),
                "rate": results["latency"]["rate"] if lat else None,
                "p99_ms": lat["latency_ms"]["99"] if lat else None,
                "latency_met": bool(
                    lat
                    and lat["kept_up"]["server_kept_up"]
                    and lat["latency_ms"]["99"] is not None
                    and lat["latency_ms"]["99"] < 50.0
                ),
            }
    finally:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print(table(results))
    print(f"\nJSON: {args.out}  ({results['elapsed_s']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
