"""WeChat passive-reply latency: time to answer signed pushes while the web channel is loaded.

Starts `intake-hub serve` (embedded defaults, WeChat configured in plaintext mode), puts
wrk's web load on it (`post_message.lua`, a fixed number of connections), and meanwhile
sends WeChat text pushes at a fixed rate from an open-loop aiohttp client, each a new
MsgId and a new follower, measuring from the scheduled send time to the answer. Reports
p50/p99/max, how many answers carried the auto-reply (passive XML) versus `success`
(budget missed), and whether any answer came after WeChat's 5 s deadline. Loopback only.

    .venv/bin/python bench/wechat_latency.py --rate 200 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import web_load as wl  # bench/ is on sys.path when this file runs as a script

from intake_hub.connectors.wechat.normalize import signature

TOKEN = "benchtoken"
PUSH = (
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
    "<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
    "<MsgId>{msg_id}</MsgId></xml>"
)
TEXTS = (
    "衣服有质量问题，开线了，订单号 4102938475610",
    "我的快递三天没动了，单号 SF1234567890123",
    "尺码不对，想换大一码",
    "发票开错了，抬头要改",
)


async def open_loop(port: int, rate: float, duration: float) -> dict[str, Any]:
    """Signed pushes at `rate`/s for `duration` s; latency from each scheduled send."""
    latencies: list[float] = []
    passive = success = errors = 0
    n = int(rate * duration)
    start = time.monotonic() + 0.2
    url = f"http://{wl.LOOPBACK}:{port}/hooks/wechat"

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal passive, success, errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        ts, nonce = str(int(time.time())), str(i)
        body = PUSH.format(
            user=f"o-bench-{i}", ts=ts, text=TEXTS[i % len(TEXTS)], msg_id=9_000_000_000 + i
        )
        query = {"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
        try:
            async with session.post(url, params=query, data=body.encode()) as resp:
                answer = await resp.text()
                ok = resp.status == 200
        except aiohttp.ClientError:
            ok, answer = False, ""
        latencies.append(time.monotonic() - due)
        if not ok:
            errors += 1
        elif answer.strip() == "success":
            success += 1
        else:
            passive += 1

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        pushes = asyncio.gather(*(one(i, session) for i in range(n)))
        control = await asyncio.gather(pushes, healthz_loop(port, duration, start))
    latencies.sort()
    return control[1] | {
        "sent": n,
        "rate": rate,
        "passive_replies": passive,
        "success_answers": success,
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "over_5s": sum(1 for x in latencies if x > 5.0),
    }


async def healthz_loop(port: int, duration: float, start: float) -> dict[str, Any]:
    """The control: `GET /healthz` at 20/s beside the pushes, a handler that does nothing.

    Its latency is the time a request waits for the service's event loop; a push slower
    than this by much is slowed by its own work (database writes), else by the loop.
    """
    rate, latencies = 20.0, []
    url = f"http://{wl.LOOPBACK}:{port}/healthz"

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        async with session.get(url) as resp:
            await resp.read()
        latencies.append(time.monotonic() - due)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(i, session) for i in range(int(rate * duration))))
    latencies.sort()
    return {
        "healthz_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "healthz_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the service, the web load and the WeChat open loop; print and save the result."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=200.0, help="WeChat pushes per second")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--web-connections", type=int, default=16, help="wrk connections (0: none)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    wrk_args = argparse.Namespace(threads=1, connections=args.web_connections, wrk_timeout=10.0)
    with tempfile.TemporaryDirectory(prefix="ih-wechat-") as tmp:
        home = Path(tmp) / "home"
        port = wl.free_port()
        # The shipped admission control on: it is what keeps the web load from the queues.
        env = wl.service_env(home, port, admission=True) | {"INTAKE_HUB_WECHAT_TOKEN": TOKEN}
        cmd = [str(Path(wl.PY).with_name("intake-hub")), "serve", "--quiet"]
        with wl.server(cmd, port, "/readyz", env=env, log_path=Path(tmp) / "serve.log"):
            web: dict[str, Any] = {}
            if args.web_connections:
                t = threading.Thread(
                    target=lambda: web.update(
                        wl.run_wrk(port, wrk_args, args.duration + 1, None, "wechat-bg")
                    )
                )
                t.start()
                time.sleep(0.5)
            result = asyncio.run(open_loop(port, args.rate, args.duration))
            if args.web_connections:
                t.join()
                result["web_accepted_per_s"] = web.get("ok_per_s")
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0 if result["over_5s"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
