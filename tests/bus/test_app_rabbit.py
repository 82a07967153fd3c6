"""The whole service on RabbitMQ: a web message goes over the broker and is stored."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace

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
