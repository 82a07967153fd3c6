"""The whole service on RabbitMQ: a web message goes over the broker and is stored."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from intake_hub.app import SERVICES, create_app
from intake_hub.bus import RabbitBus
from intake_hub.config import Settings
from tests.web.conftest import AUTH, Client, post_message, settle


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@pytest.fixture
def vhost_url(amqp_url: str) -> Iterator[str]:
    """A virtual host of this test's own (the app's queues have fixed names), deleted after."""
    vhost = f"test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{amqp_url}{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


async def test_web_message_is_stored_through_rabbitmq(
    settings: Settings, vhost_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """With an AMQP URL set, the app runs on RabbitMQ, and a web POST ends as a stored ticket."""
    client = await aiohttp_client(create_app(replace(settings, amqp_url=vhost_url)))
    assert isinstance(client.app[SERVICES].bus, RabbitBus)
    accepted = await post_message(client)
    await settle(client)

    resp = await client.get(f"/api/v1/tickets/{accepted['ticket']}", headers=AUTH)
    assert resp.status == 200
    ticket = await resp.json()
    assert ticket["channel"] == "web"
    assert "尺码不对" in ticket["messages"][0]["text"]


async def test_gateway_metrics_report_queue_depth_read_from_the_broker(
    settings: Settings, vhost_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """With no worker running, /metrics shows the classify backlog as RabbitMQ counts it."""
    gateway = create_app(replace(settings, amqp_url=vhost_url), run=())
    client = await aiohttp_client(gateway)
    for _ in range(3):
        await post_message(client)

    def depth(text: str, queue: str) -> float:
        prefix = f'intake_hub_queue_depth{{queue="{queue}"}} '
        line = next(x for x in text.splitlines() if x.startswith(prefix))
        return float(line[len(prefix) :])

    # The broker's count trails the confirms by a moment; the gauge is read at each scrape.
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        text = await (await client.get("/metrics")).text()
        if depth(text, "intake_hub.classify") == 3 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert depth(text, "intake_hub.classify") == 3
    assert depth(text, "intake_hub.persist") == 0


async def test_gateway_refuses_web_while_the_broker_queue_is_behind(
    settings: Settings,
    vhost_url: str,
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    """No worker: once RabbitMQ holds max_backlog messages, web posts get 503 + Retry-After."""
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "web.yaml").write_text("type: web\nname: web\nlimits:\n  max_backlog: 10\n")
    gateway = create_app(replace(settings, amqp_url=vhost_url, connectors_dir=connectors), run=())
    client = await aiohttp_client(gateway)
    statuses: list[int] = []
    deadline = asyncio.get_running_loop().time() + 15
    while 503 not in statuses and asyncio.get_running_loop().time() < deadline:
        resp = await client.post(
            "/api/v1/web/messages",
            json={"name": "孙", "contact": f"138{len(statuses):08d}", "text": "还没到"},
        )
        statuses.append(resp.status)
        if resp.status == 503:
            assert resp.headers["Retry-After"] == "5"
            assert (await resp.json())["error"] == "busy"
        await asyncio.sleep(0.02)
    assert statuses[:10] == [202] * 10
    assert statuses[-1] == 503
