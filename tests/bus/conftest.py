"""The local RabbitMQ broker for bus tests, and RabbitMQ buses isolated by namespace."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from intake_hub.bus import RabbitBus

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
BROKER_START_S = 60.0


def _broker_up() -> bool:
    # Plain sockets: this may run inside a test's event loop, where asyncio.run cannot.
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=3) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1)[:1] == b"\x01"  # Connection.Start is a method frame (type 1)
    except OSError:
        return False


def _ensure_broker() -> bool:
    if _broker_up():
        return True
    subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
    deadline = time.monotonic() + BROKER_START_S
    while time.monotonic() < deadline:
        ping = subprocess.run(
            ["rabbitmq-diagnostics", "-q", "ping"], check=False, capture_output=True
        )
        if ping.returncode == 0 and _broker_up():
            return True
        time.sleep(1)
    return False


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The local RabbitMQ broker, started if it is down; a test needing it fails without it."""
    if not _ensure_broker():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672 and could not be started")
    return AMQP_URL


def new_namespace() -> str:
    """A prefix of a test's own for every exchange and queue it makes."""
    return f"test-{uuid.uuid4().hex[:10]}."


async def remove_topology(bus: RabbitBus) -> None:
    """Delete what `bus` declared, on a fresh connection (the test may have broken its own)."""
    await bus.close()
    await bus.start()
    await bus.delete_topology()
    await bus.close()


@pytest.fixture
async def rabbit_buses(amqp_url: str) -> AsyncIterator[Callable[[], RabbitBus]]:
    """Makes (unstarted) buses sharing this test's namespace; removes their topology after."""
    namespace = new_namespace()
    made: list[RabbitBus] = []

    def make() -> RabbitBus:
        bus = RabbitBus(amqp_url, namespace=namespace)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await remove_topology(bus)
