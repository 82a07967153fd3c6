"""The broker out of reach of a gateway: it spools, forwards afterwards, loses nothing.

The broker is shared by everyone on this machine, so it is never stopped: the gateway
reaches it through a loopback TCP proxy of this test's own, and the outage is the proxy
dropping every connection and refusing new ones.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.faults.conftest import (
    Cluster,
    assert_exactly_once,
    paced_load,
    post_many,
    ticket_numbers,
    wait_stored,
)
from tests.served.conftest import free_port

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.timeout(60)]

BROKER_PORT = 5672


class CutProxy:
    """A TCP proxy to the broker on its own thread and loop; `cut` makes the broker unreachable."""

    def __init__(self) -> None:
        self.port = free_port()
        self._open = True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._transports: set[asyncio.WriteTransport] = set()
        self._server: asyncio.Server | None = None

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> None:
        """Listen on loopback."""
        self._thread.start()
        self._call(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", BROKER_PORT)
        except OSError:
            writer.transport.abort()
            return
        self._transports |= {writer.transport, up_writer.transport}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)

    async def _cut(self) -> None:
        self._open = False
        for transport in list(self._transports):
            transport.abort()

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones."""
        self._call(self._cut())

    def restore(self) -> None:
        """Let connections through again."""
        self._open = True

    def url(self, amqp_url: str) -> str:
        """`amqp_url` (on the broker's port) rewritten to go through the proxy."""
        return amqp_url.replace(f":{BROKER_PORT}/", f":{self.port}/")

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()

    def stop(self) -> None:
        """Close everything and end the thread."""
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def proxy() -> Iterator[CutProxy]:
    """A running proxy to the local broker, stopped after the test."""
    p = CutProxy()
    p.start()
    try:
        yield p
    finally:
        p.stop()


async def _readyz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(url + "/readyz") as resp:
        body: dict[str, Any] = await resp.json()
        return resp.status, body


async def _gauge(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url + "/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("intake_hub_spool_depth "):
                return float(line.split()[1])
    raise AssertionError("no intake_hub_spool_depth gauge")


async def _wait_ready(url: str, *, spool: int | None, timeout: float = 15) -> dict[str, Any]:
    """Wait until /readyz is 200 and shows `spool` messages spooled (None: no degradation)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            status, body = await _readyz(session, url)
            degraded = body["degraded"]
            seen = degraded.get("spool") if degraded else None
            if status == 200 and seen == spool and (spool is not None or not degraded):
                return body
            assert time.monotonic() < deadline, (status, body)
            await asyncio.sleep(0.1)




N = 900
RATE = 150.0  # messages per second: the load lasts 6 s, the outage about 2.5 s of it




def test_broker_outage_during_load_spools_and_forwards(cluster: Cluster, proxy: CutProxy) -> None:
    """The broker vanishes mid-load: every 202 is stored once, spooled meanwhile, then drained."""
    gateway = cluster.start("gateway", INTAKE_HUB_AMQP_URL=proxy.url(cluster.amqp_url))
    cluster.start("worker")
    accepted: list[str] = []
    statuses: list[int] = []

    async def main() -> int:
        load = asyncio.create_task(paced_load(gateway.url, N, RATE, "out", accepted, statuses))
        await asyncio.sleep(1.5)
        proxy.cut()
        deepest = 0
        async with aiohttp.ClientSession() as session:
            cut_at = time.monotonic()
            while time.monotonic() - cut_at < 2.5 or deepest == 0:
                assert time.monotonic() - cut_at < 10, "the gateway never spooled"
                status, body = await _readyz(session, gateway.url)
                assert status == 200, body
                if body["degraded"].get("broker") == "unreachable":
                    deepest = max(deepest, int(body["degraded"]["spool"]))
                await asyncio.sleep(0.1)
        proxy.restore()
        await load
        return deepest

    deepest = asyncio.run(main())
    assert deepest > 0
    assert statuses == [202] * N
    assert len(accepted) == N
    assert asyncio.run(wait_stored(cluster.database_url, N, timeout=30)) == N
    assert_exactly_once(asyncio.run(ticket_numbers(cluster.database_url)), accepted)
    asyncio.run(_wait_ready(gateway.url, spool=None))
    assert gateway.stop() == 0


def test_gateway_killed_while_spooling_loses_nothing(cluster: Cluster, proxy: CutProxy) -> None:
    """SIGKILL with messages only in the spool: the restarted gateway forwards every one."""
    n = 300
    via_proxy = proxy.url(cluster.amqp_url)
    gateway = cluster.start("gateway", INTAKE_HUB_AMQP_URL=via_proxy)
    cluster.start("worker")
    proxy.cut()

    async def spooled() -> list[str]:
        await _wait_ready(gateway.url, spool=0)
        accepted = await post_many(gateway.url, n, tag="kill", concurrency=20)
        await _wait_ready(gateway.url, spool=n)
        async with aiohttp.ClientSession() as session:
            assert await _gauge(session, gateway.url) == n
        return accepted

    accepted = asyncio.run(spooled())
    gateway.stop(signal.SIGKILL)
    proxy.restore()

    again = cluster.start("gateway", INTAKE_HUB_AMQP_URL=via_proxy)
    assert asyncio.run(wait_stored(cluster.database_url, n, timeout=30)) == n
    assert_exactly_once(asyncio.run(ticket_numbers(cluster.database_url)), accepted)
    asyncio.run(_wait_ready(again.url, spool=None))
    assert again.stop() == 0
