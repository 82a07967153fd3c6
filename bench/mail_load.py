"""Email intake benchmark: a bare aiosmtpd listener beside `intake-hub serve`'s SMTP intake.

1. bare:    this file as a bare aiosmtpd server (a subprocess, uvloop, its handler answers
            250 at once: no parsing, no storage) under C concurrent SMTP clients -> mails/s.
2. service: `intake-hub serve` (embedded, SQLite, a fresh home) with the email channel on a
            free port, the same clients -> accepted/s (250s), p50/p99 from DATA to the 250,
            refusals; then /metrics is polled until every accepted mail is stored ->
            stored/s, drain; the database must hold one ticket per accepted mail.
            With --relay a sink relay (this file as a subprocess answering 250) takes the
            acknowledgements; each mail's sender is new, so the loop guard never holds one.

The clients (aiosmtplib, uvloop, in their own process like wrk) keep each connection for
--per-connection mails, as an MTA does: MAIL, RCPT, DATA per mail, QUIT at the end.
Mails are small and realistic: a UTF-8 Chinese subject (RFC 2047) and body (base64).

    .venv/bin/python bench/mail_load.py --out /tmp/mailbench-1.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.header import Header
from email.utils import formatdate
from pathlib import Path
from typing import Any

import web_load as wl  # bench/ is on sys.path when this file runs as a script

ME = Path(__file__).resolve()
RECIPIENT = "service@shop.example"
MAIL_FROM = "客服 <service@shop.example>"
DB_FILE = "intake-hub.sqlite3"
_METRIC = re.compile(
    r'^intake_hub_(received|stored)_total\{channel="email"\}\s+([0-9.eE+]+)$', re.MULTILINE
)
SUBJECTS = (
    "订单发货问题",
    "衣服开线了，想退货",
    "尺码不对，能换大一码吗",
    "发票抬头开错了",
    "快递三天没有更新",
)
BODIES = (
    "你好，\n\n我上周买的外套收到后发现袖口开线了，订单号 4102938475610，"
    "想申请退货退款，请问需要寄回到哪里？\n\n谢谢\n王女士\n",
    "您好：\n\n我的快递单号 SF1234567890123 已经三天没有物流更新了，能帮忙查一下吗？"
    "这是送给朋友的生日礼物，比较着急。\n\n李先生\n",
    "客服你好，\n\n鞋子尺码偏小，41 码穿着挤脚，想换成 42 码，"
    "鞋盒和吊牌都还在。订单 20261203-88417。\n\n张三\n",
    "你好，发票抬头写成了个人，应该是公司：上海某某贸易有限公司，"
    "税号 91310000MA1FL0XX3K，麻烦重新开一张，谢谢。\n",
)


def smtp_ready(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until an SMTP server on loopback `port` sends its 220 greeting."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((wl.LOOPBACK, port), 1) as s:
            s.settimeout(2.0)
            if s.recv(512).startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers SMTP on port {port} after {timeout:.0f}s")
        time.sleep(0.1)


@contextlib.contextmanager
def smtp_server(
    role: str, port: int, extra: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """This file as a bare or sink SMTP server in a subprocess, stopped with SIGINT after."""
    cmd = [wl.PY, str(ME), "--role", role, "--port", str(port), *(extra or [])]
    proc = subprocess.Popen(cmd, cwd=wl.ROOT)
    try:
        smtp_ready(port, proc=proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the servers and the client, each run as `--role ...` in its own process ---------


def _install_uvloop() -> None:
    """uvloop where it builds, as `intake-hub serve` runs."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def run_server(port: int, count_file: Path | None) -> None:
    """An aiosmtpd listener with the service's session options whose DATA answers 250 at once.

    With `count_file` (the sink relay) it also counts the mails and writes
    `<count> <monotonic time of the last>` there every 0.1 s.
    """
    from aiosmtpd.smtp import SMTP

    seen = {"n": 0, "last": 0.0}

    class Handler:
        """No parsing, no storage: only the answer."""

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            """Count and accept."""
            seen["n"] += 1
            seen["last"] = time.monotonic()
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(
            lambda: SMTP(
                Handler(),
                data_size_limit=26214400,
                timeout=60,
                command_call_limit=100,
                enable_SMTPUTF8=True,
                loop=loop,
            ),
            wl.LOOPBACK,
            port,
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            if count_file is not None:
                tmp = count_file.with_suffix(".tmp")
                tmp.write_text(f"{seen['n']} {seen['last']}\n")
                tmp.replace(count_file)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        srv.close()

    _install_uvloop()
    asyncio.run(main())


def make_mail(tag: str, i: int) -> tuple[str, bytes]:
    """(envelope sender, the mail's bytes): a new sender and Message-ID for each `i`."""
    sender = f"kunde-{tag}-{i}@mail.example.net"
    subject = Header(SUBJECTS[i % len(SUBJECTS)], "utf-8").encode()
    body = base64.encodebytes(BODIES[i % len(BODIES)].encode()).decode()
    name = Header(("王女士", "李先生", "张三")[i % 3], "utf-8").encode()
    head = (
        f"Received: from mx.mail.example.net (mx.mail.example.net [192.0.2.{i % 250 + 1}])\r\n"
        f"\tby mx.shop.example with ESMTPS id {tag}{i:x}; {formatdate()}\r\n"
        f"From: {name} <{sender}>\r\n"
        f"To: {RECIPIENT}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {formatdate()}\r\n"
        f"Message-ID: <{tag}.{i}@mail.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    )
    return sender, (head + body.replace("\n", "\r\n")).encode()


async def client_load(
    port: int, clients: int, duration: float, per_connection: int, tag: str
) -> dict[str, Any]:
    """`clients` sessions sending mails back to back for `duration` s; latency DATA to 250.

    Every mail begun is finished, so the count of 250s is exact (tickets == accepted).
    """
    import aiosmtplib

    latencies: list[float] = []
    refused: dict[str, int] = {}
    errors: dict[str, int] = {}
    counter = iter(range(1 << 62))
    start = time.monotonic()
    deadline = start + duration
    ends: list[float] = []

    async def one(k: int) -> None:
        while time.monotonic() < deadline:
            smtp = aiosmtplib.SMTP(hostname=wl.LOOPBACK, port=port, timeout=30, start_tls=False)
            try:
                await smtp.connect()
                for _ in range(per_connection):
                    if time.monotonic() >= deadline:
                        break
                    sender, raw = make_mail(tag, next(counter))
                    try:
                        await smtp.mail(sender)
                        await smtp.rcpt(RECIPIENT)
                        t = time.monotonic()
                        await smtp.data(raw)
                        latencies.append(time.monotonic() - t)
                    except aiosmtplib.SMTPResponseException as exc:
                        refused[str(exc.code)] = refused.get(str(exc.code), 0) + 1
                        with contextlib.suppress(aiosmtplib.SMTPException):
                            await smtp.rset()
                with contextlib.suppress(aiosmtplib.SMTPException):
                    await smtp.quit()
            except (OSError, aiosmtplib.SMTPException) as exc:
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                await asyncio.sleep(0.05)
            finally:
                smtp.close()
        ends.append(time.monotonic())

    await asyncio.gather(*(one(k) for k in range(clients)))
    return {
        "accepted": len(latencies),
        "seconds": round(max(ends) - start, 3),
        "refused": refused,
        "errors": errors,
        "latencies": latencies,
    }


def run_client(args: argparse.Namespace) -> None:
    """The client process: print its result as JSON on stdout."""
    _install_uvloop()
    r = asyncio.run(
        client_load(args.port, args.clients, args.duration, args.per_connection, args.tag)
    )
    print(json.dumps(r))


# --- the harness --------------------------------------------------------------------------


def pct(xs: list[float], q: float) -> float | None:
    """The q-quantile of sorted `xs` in ms."""
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, int(len(xs) * q))] * 1000, 2)


def load(port: int, args: argparse.Namespace, duration: float, tag: str) -> dict[str, Any]:
    """--client-procs client processes (--clients sessions among them); merged numbers."""
    procs = []
    per = [
        args.clients // args.client_procs + (k < args.clients % args.client_procs)
        for k in range(args.client_procs)
    ]
    for k, n in enumerate(per):
        cmd = [
            wl.PY,
            str(ME),
            "--role",
            "client",
            "--port",
            str(port),
            "--clients",
            str(n),
            "--duration",
            f"{duration:g}",
            "--per-connection",
            str(args.per_connection),
            "--tag",
            f"{tag}{k}",
        ]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=wl.ROOT))
    parts = []
    for p in procs:
        out, _ = p.communicate(timeout=duration + 120)
        if p.returncode != 0:
            raise RuntimeError(f"client exited with {p.returncode}")
        parts.append(json.loads(out))
    lat = sorted(x for r in parts for x in r["latencies"])
    secs = max(r["seconds"] for r in parts)
    refused: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in parts:
        for code, n in r["refused"].items():
            refused[code] = refused.get(code, 0) + n
        for name, n in r["errors"].items():
            errors[name] = errors.get(name, 0) + n
    accepted = len(lat)
    return {
        "command": f"{len(procs)} x {ME.name} --role client ({args.clients} sessions, "
        f"{args.per_connection} mails each, {duration:g}s)",
        "accepted": accepted,
        "seconds": secs,
        "accepted_per_s": round(accepted / secs, 1) if secs else 0.0,
        "p50_ms": pct(lat, 0.50),
        "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
        "refused": refused,
        "errors": errors,
    }


def email_counters(port: int) -> tuple[float, float] | None:
    """(received, stored) of the email channel from /metrics."""
    status, body = wl.http_get(port, "/metrics")
    if status != 200:
        return None
    found = dict.fromkeys(("received", "stored"), 0.0)
    for name, value in _METRIC.findall(body.decode()):
        found[name] = float(value)
    return found["received"], found["stored"]


def wait_stored(port: int, target: float, timeout: float) -> tuple[float, float, float, bool]:
    """Poll until stored >= received and >= `target`: (received, stored, when seen, done)."""
    deadline = time.monotonic() + timeout
    while True:
        c = email_counters(port)
        now = time.monotonic()
        if c and c[1] >= c[0] and c[1] >= target:
            return c[0], c[1], now, True
        if now > deadline:
            r, s = c or (0.0, 0.0)
            return r, s, now, False
        time.sleep(0.05)


def db_counts(path: Path) -> dict[str, int]:
    """Inbound email messages and tickets, read straight from the SQLite file."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        msgs = con.execute(
            "SELECT count(*) FROM message WHERE direction = 'in' AND channel = 'email'"
        ).fetchone()[0]
        tickets = con.execute("SELECT count(*) FROM ticket").fetchone()[0]
    finally:
        con.close()
    return {"messages_in": msgs, "tickets": tickets}


def sink_count(path: Path) -> tuple[int, float]:
    """(mails the sink relay took, monotonic time of the last)."""
    try:
        n, last = path.read_text().split()
    except (OSError, ValueError):
        return 0, 0.0
    return int(n), float(last)


def wait_acks(path: Path, target: int, timeout: float) -> tuple[int, float, bool]:
    """Poll the sink's count until it reaches `target`: (count, time of the last, done)."""
    deadline = time.monotonic() + timeout
    while True:
        n, last = sink_count(path)
        if n >= target:
            return n, last, True
        if time.monotonic() > deadline:
            return n, last, False
        time.sleep(0.1)


def with_sink(cpu: dict[str, float], sink_s: float) -> dict[str, float]:
    """The sink relay is the benchmark's, not noise: take its CPU out of `other_s`."""
    cpu = dict(cpu)
    cpu["sink_s"] = round(sink_s, 2)
    cpu["other_s"] = round(max(0.0, cpu["other_s"] - sink_s), 2)
    return cpu


def bench_bare(args: argparse.Namespace) -> dict[str, Any]:
    """The ceiling: the bare aiosmtpd server under the same clients."""
    port = wl.free_port()
    with smtp_server("bare", port) as proc:
        if args.warmup > 0:
            load(port, args, args.warmup, "warm")
        meter = wl.CpuMeter(proc.pid).start()
        r = load(port, args, args.duration, f"bare{os.getpid()}-")
        r["cpu"] = meter.stop()
    return r


def service_env(
    home: Path, http_port: int, smtp_port: int, args: argparse.Namespace, relay_port: int | None
) -> dict[str, str]:
    """web_load's environment (fresh home, its rate limits) plus the email channel."""
    env = wl.service_env(home, http_port) | {
        "INTAKE_HUB_PROCESSES": str(args.processes),
        "INTAKE_HUB_MAIL_RECIPIENTS": RECIPIENT,
        "INTAKE_HUB_SMTP_PORT": str(smtp_port),
    }
    for var in ("INTAKE_HUB_SMTP_RELAY", "INTAKE_HUB_MAIL_FROM", "INTAKE_HUB_DATABASE_URL"):
        env.pop(var, None)
    if relay_port is not None:
        env |= {
            "INTAKE_HUB_SMTP_RELAY": f"{wl.LOOPBACK}:{relay_port}",
            "INTAKE_HUB_MAIL_FROM": MAIL_FROM,
        }
    return env


def bench_service(args: argparse.Namespace, workdir: Path, run: int) -> dict[str, Any]:
    """The service under the clients, then drained, counted and checked."""
    http_port, smtp_port = wl.free_port(), wl.free_port()
    home = Path(tempfile.mkdtemp(prefix="svc-", dir=workdir))
    with contextlib.ExitStack() as stack:
        relay_port = count_file = sink = None
        if args.relay:
            relay_port, count_file = wl.free_port(), home / "sink.count"
            sink = stack.enter_context(
                smtp_server("sink", relay_port, ["--count-file", str(count_file)])
            )
        env = service_env(home, http_port, smtp_port, args, relay_port)
        proc = stack.enter_context(
            wl.server(
                wl.service_cmd(None),
                http_port,
                "/readyz",
                env=env,
                log_path=home / "serve.log",
                timeout=60,
            )
        )
        smtp_ready(smtp_port, proc=proc)
        tag = f"r{run}p{os.getpid()}t{int(time.time())}-"
        if args.warmup > 0:
            load(smtp_port, args, args.warmup, "w" + tag)
            wait_stored(http_port, 0, args.drain_timeout)
            if count_file is not None:
                wait_acks(count_file, db_counts(home / DB_FILE)["tickets"], args.ack_timeout)
        base = email_counters(http_port) or (0.0, 0.0)
        base_db = db_counts(home / DB_FILE)
        base_acks = sink_count(count_file)[0] if count_file else 0
        sink_cpu = wl.cpu_s(sink.pid) if sink else 0.0
        meter = wl.CpuMeter(proc.pid).start()
        t0 = time.monotonic()
        r = load(smtp_port, args, args.duration, tag)
        t_load_end = time.monotonic()
        sink_now = wl.cpu_s(sink.pid) if sink else 0.0
        r["cpu"] = with_sink(meter.stop(), sink_now - sink_cpu)
        drain_meter = wl.CpuMeter(proc.pid).start()
        received, stored, t_seen, caught_up = wait_stored(
            http_port, base[1] + r["accepted"], args.drain_timeout
        )
        sink_then = wl.cpu_s(sink.pid) if sink else 0.0
        r["cpu_drain"] = with_sink(drain_meter.stop(), sink_then - sink_now)
        db = db_counts(home / DB_FILE)
        if count_file is not None:
            want = base_acks + db["tickets"] - base_db["tickets"]
            acks, t_last, all_acks = wait_acks(count_file, want, args.ack_timeout)
            r["acks"] = acks - base_acks
            r["acks_all_arrived"] = all_acks
            r["acks_done_s"] = round(t_last - t0, 2) if acks > base_acks else None
            r["acks_per_s"] = round(r["acks"] / (t_last - t0), 1) if acks > base_acks else None
    n_stored = stored - base[1]
    window = max(t_seen, t_load_end) - t0 if caught_up else None
    tickets = db["tickets"] - base_db["tickets"]
    msgs = db["messages_in"] - base_db["messages_in"]
    r.update(
        home=str(home),
        received=int(received - base[0]),
        stored=int(n_stored),
        caught_up=caught_up,
        drain_s=round(t_seen - t_load_end, 3),
        stored_per_s=round(n_stored / window, 1) if window else None,
        tickets=tickets,
        messages_in=msgs,
        exactly_once=tickets == msgs == r["accepted"],
    )
    return r


def _cores(r: dict[str, Any], key: str = "cpu") -> tuple[str, str]:
    """(server cores, other cores) of a run's CPU window."""
    c = r.get(key)
    if not c:
        return "?", "?"
    return f"{c['server_cores']:.2f}", f"{c['other_s'] / c['window_s']:.2f}"


def table(results: dict[str, Any]) -> str:
    """The human summary, one row per run."""
    head = (
        "run",
        "250/s",
        "p50 ms",
        "p99 ms",
        "refused",
        "stored/s",
        "drain s",
        "tickets",
        "once",
        "acks",
        "srv cores",
        "load cores",
        "other cores",
    )
    rows = [head]
    for i, b in enumerate(results["bare"]):
        c = b["cpu"]
        rows.append(
            (
                f"bare {i + 1}",
                f"{b['accepted_per_s']:.0f}",
                f"{b['p50_ms']:.2f}",
                f"{b['p99_ms']:.2f}",
                str(sum(b["refused"].values())),
                "-",
                "-",
                "-",
                "-",
                "-",
                *_cores(b)[:1],
                f"{c['load_s'] / c['window_s']:.2f}",
                _cores(b)[1],
            )
        )
    for i, s in enumerate(results["service"]):
        c = s["cpu"]
        acks = "-" if "acks" not in s else f"{s['acks']}" + ("" if s["acks_all_arrived"] else "!")
        rows.append(
            (
                f"service {i + 1}",
                f"{s['accepted_per_s']:.0f}",
                f"{s['p50_ms']:.2f}",
                f"{s['p99_ms']:.2f}",
                str(sum(s["refused"].values())),
                f"{s['stored_per_s']:.0f}" if s["stored_per_s"] else "n/a",
                f"{s['drain_s']:.2f}",
                str(s["tickets"]),
                "yes" if s["exactly_once"] else "NO",
                acks,
                *_cores(s)[:1],
                f"{c['load_s'] / c['window_s']:.2f}",
                _cores(s)[1],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    ratio = results.get("ratio")
    if ratio:
        lines.append("")
        lines.append(
            f"service / bare (median 250/s): {ratio['accepted']:.2f}; "
            f"stored/s / bare: {ratio['stored']:.2f}"
        )
    for i, s in enumerate(results["service"]):
        if s.get("acks_per_s"):
            lines.append(
                f"service {i + 1}: {s['acks']} acknowledgements at the relay, the last "
                f"{s['acks_done_s']}s after the load began ({s['acks_per_s']}/s)"
            )
    lines.append("")
    lines.append(
        "p50/p99: DATA sent to its 250; srv/load/other cores: CPU of the server, the "
        "clients, and processes outside the benchmark (noise, should be ~0)"
    )
    return "\n".join(lines)


def median(xs: list[float]) -> float:
    """The middle value (the mean of the two middle ones)."""
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def main(argv: list[str] | None = None) -> int:
    """Run the bare and service runs alternately, print the table, write the JSON."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--role",
        choices=("bench", "bare", "sink", "client"),
        default="bench",
        help=argparse.SUPPRESS,
    )
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--count-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tag", default="m", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each load")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each run")
    p.add_argument("--clients", type=int, default=16, help="concurrent SMTP sessions")
    p.add_argument("--client-procs", type=int, default=1, help="client processes")
    p.add_argument("--per-connection", type=int, default=20, help="mails per SMTP session")
    p.add_argument(
        "--processes", type=int, choices=(1, 2), default=1, help="INTAKE_HUB_PROCESSES of serve"
    )
    p.add_argument(
        "--relay",
        action="store_true",
        help="a sink relay and a sender address: acknowledgements are mailed",
    )
    p.add_argument("--runs", type=int, default=2, help="bare and service runs, alternating")
    p.add_argument("--skip", action="append", default=[], choices=("bare", "service"))
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait to store")
    p.add_argument(
        "--ack-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the acknowledgements after the drain",
    )
    p.add_argument("--out", type=Path, default=wl.BENCH / "results" / "mail_latest.json")
    p.add_argument("--keep", action="store_true", help="keep the service homes")
    args = p.parse_args(argv)
    if args.role == "client":
        run_client(args)
        return 0
    if args.role in ("bare", "sink"):
        run_server(args.port, args.count_file if args.role == "sink" else None)
        return 0

    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {k: v for k, v in wl.machine().items() if k != "wrk"},
        "loadavg": os.getloadavg(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "bare": [],
        "service": [],
    }
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mailbench-"))
    try:
        for run in range(args.runs):
            if "bare" not in args.skip:
                wl.log(f"bare aiosmtpd, run {run + 1}: {args.clients} sessions, {args.duration:g}s")
                b = bench_bare(args)
                results["bare"].append(b)
                wl.log(f"  {b['accepted_per_s']:.0f} mails/s")
            if "service" not in args.skip:
                wl.log(f"service, run {run + 1}: {args.duration:g}s, then drain")
                s = bench_service(args, workdir, run)
                results["service"].append(s)
                wl.log(
                    f"  {s['accepted_per_s']:.0f} accepted/s, stored/s {s['stored_per_s']}, "
                    f"exactly once {'yes' if s['exactly_once'] else 'NO'}"
                )
        if results["bare"] and results["service"]:
            bare = median([b["accepted_per_s"] for b in results["bare"]])
            stored = [s["stored_per_s"] or 0.0 for s in results["service"]]
            results["ratio"] = {
                "accepted": median([s["accepted_per_s"] for s in results["service"]]) / bare,
                "stored": median(stored) / bare,
            }
    finally:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        results["loadavg_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print(table(results))
    print(f"\nJSON: {args.out}  ({results['elapsed_s']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
