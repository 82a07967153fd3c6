"""Token life cycle on the API: rotation and disabling bite within a second; bad headers are 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage import agents
from intake_hub.storage.models import Agent
from tests.conftest import ADMIN_TOKEN
from tests.web.conftest import Client

TICKETS = "/api/v1/tickets"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


async def status_of(client: Client, token: str) -> int:
    """The status the ticket list answers `token` with."""
    resp = await client.get(TICKETS, headers=bearer(token))
    await resp.read()
    return resp.status


async def refused_after(client: Client, token: str, limit: float = 3.0) -> float:
    """Seconds until `client` answers `token` with 401 (polling), or `limit` if it never does."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await status_of(client, token) == 401:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    return limit


@pytest.fixture
async def second(
    client: Client,
    settings: Settings,
    db_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Client:
    """Another app instance on the same database: its own token cache, as another process has."""
    return await aiohttp_client(create_app(replace(settings, database_url=db_url)))


async def test_rotated_token_is_refused_within_a_second_everywhere(
    client: Client, second: Client
) -> None:
    """After `agent token`, the old token is refused on both instances within 1 s; the new works."""
    old = await agents.add_agent("li", "小李", "agent", team="aftersales")
    for c in (client, second):
        assert await status_of(c, old) == 200  # now remembered by each instance
    new = await agents.rotate_token("li")
    assert new is not None and new != old
    for c in (client, second):
        assert await status_of(c, new) == 200
    assert await refused_after(second, old) < 1.0
    assert await refused_after(client, old) < 1.0


async def test_disabled_agent_is_refused_and_taken_off_routing(
    client: Client, second: Client
) -> None:
    """A disabled agent is refused within 1 s and goes offline; a new token re-enables them."""
    token = await agents.add_agent("li", "小李", "agent", team="aftersales")
    assert await status_of(second, token) == 200
    assert await agents.disable_agent("li")
    assert await refused_after(second, token) < 1.0
    assert await status_of(client, token) == 401
    agent = await Agent.get(id="li")
    assert not agent.online
    assert [a.enabled for a in await agents.list_agents()] == [False]
    new = await agents.rotate_token("li")
    assert new is not None
    assert await status_of(second, new) == 200
    assert (await Agent.get(id="li")).online


async def raw_request(client: Client, authorization: bytes) -> tuple[int, bytes]:
    """Send a GET of the ticket list with these Authorization bytes over a bare socket."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"GET " + TICKETS.encode() + b" HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: " + authorization + b"\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(b"Bearer \xff\xfe\xfd", id="not-utf8"),
        pytest.param(b"Bearer abc\xc3", id="truncated-utf8"),
        pytest.param(b"Bearer " + ADMIN_TOKEN.encode() + b"\xff", id="admin-token-plus-junk"),
        pytest.param(b"Bearer abc\tdef", id="tab"),
        pytest.param(b"Bearer abc\xc2\x85def", id="c1-control-in-utf8"),
        pytest.param(b"Bearer abc\xe2\x80\x8bdef", id="zero-width-space"),
        pytest.param(b"Bearer " + b"a" * 5000, id="absurdly-long"),
        pytest.param(b"Bearer abc def", id="inner-space"),
        pytest.param(b"Basic \xff\xfe", id="other-scheme-not-utf8"),
    ],
)
async def test_malformed_credentials_are_401_with_a_json_error(
    client: Client, authorization: bytes
) -> None:
    """A bearer token of bad bytes, control characters or absurd length is a 401, never a 500."""
    status, body = await raw_request(client, authorization)
    assert status == 401, body
    error: dict[str, Any] = orjson.loads(body)
    assert error["error"] == "unauthorized"


@pytest.mark.parametrize("char", [b"\x00", b"\x01", b"\x1b", b"\x7f"])
async def test_c0_controls_are_refused_by_the_http_parser(client: Client, char: bytes) -> None:
    """C0 controls and DEL never reach the handler: aiohttp answers 400 (RFC 9110), not a 500."""
    status, body = await raw_request(client, b"Bearer abc" + char + b"def")
    assert status == 400, body
    assert b"Invalid" in body
