"""Abuse limits on web intake, driven by real concurrent HTTP clients against the app."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.connectors.registry import load_connectors
from intake_hub.connectors.web.connector import WebConfig
from intake_hub.connectors.web.limits import WebLimits
from intake_hub.connectors.web.uploads import UploadLimits
from tests.conftest import ROOT
from tests.web.conftest import Client, post_message, settle

SMALL = """type: web
name: web
limits:
  messages_per_ip: {count: 5, per: minute}
  messages_per_contact: {count: 2, per: hour}
  replies_per_ticket: {count: 3, per: hour}
  wrong_codes_per_ip: {count: 4, per: hour}
  wrong_codes_per_ticket: {count: 3, per: second}
"""

Make = Callable[..., Awaitable[Client]]


@pytest.fixture
def limited(
    settings: Settings, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Make:
    """The service with small web limits switched on; `trusted` proxies as given."""

    async def make(yaml: str = SMALL, trusted: tuple[str, ...] = ()) -> Client:
        connectors = tmp_path / "connectors"
        connectors.mkdir(exist_ok=True)
        (connectors / "web.yaml").write_text(yaml)
        app = create_app(
            replace(settings, connectors_dir=connectors, rate_limits=True, trusted_proxies=trusted)
        )
        return await aiohttp_client(app)

    return make


def _body(n: int, contact: str | None = None) -> dict[str, str]:
    return {"name": "李先生", "contact": contact or f"1390000{n:04d}", "text": f"第 {n} 个问题"}


Answer = tuple[int, dict[str, Any], str | None]


async def _post_all(
    client: Client, bodies: list[dict[str, str]], headers: list[dict[str, str]] | None = None
) -> list[Answer]:
    """Post every body at once; each answer's status, JSON and Retry-After."""

    async def one(body: dict[str, str], h: dict[str, str]) -> Answer:
        resp = await client.post("/api/v1/web/messages", json=body, headers=h)
        return resp.status, await resp.json(), resp.headers.get("Retry-After")

    hs = headers or [{} for _ in bodies]
    return list(await asyncio.gather(*(one(b, h) for b, h in zip(bodies, hs, strict=True))))


async def _web_tickets(client: Client) -> int:
    resp = await client.get(
        "/api/v1/tickets?channel=web&limit=100",
        headers={"Authorization": "Bearer test-admin-token-0123456789"},
    )
    assert resp.status == 200
    return len((await resp.json())["items"])


async def test_one_address_gets_its_burst_then_429_with_retry_after(limited: Make) -> None:
    """Twenty posts at once from one address: five tickets, fifteen 429s saying when to retry."""
    client = await limited()
    answers = await _post_all(client, [_body(n) for n in range(20)])
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [202] * 5 + [429] * 15
    for status, body, retry_after in answers:
        if status == 429:
            assert body["error"] == "rate_limited"
            # One new message per 12 s at 5/minute.
            assert retry_after is not None and 1 <= int(retry_after) <= 12
    await settle(client)
    assert await _web_tickets(client) == 5


async def test_trusted_proxy_names_the_client(limited: Make) -> None:
    """Behind a trusted proxy each forwarded client has its own bucket; a forged hop does not."""
    client = await limited(trusted=("127.0.0.0/8",))
    first = [{"X-Forwarded-For": "198.51.100.7"} for _ in range(6)]
    # A client writing its own X-Forwarded-For only adds entries to the left of the real one.
    forged = [{"X-Forwarded-For": f"10.9.9.{n}, 198.51.100.7"} for n in range(3)]
    other = [{"X-Forwarded-For": "203.0.113.9"} for _ in range(5)]
    answers = await _post_all(client, [_body(n) for n in range(14)], first + forged + other)
    assert [s for s, _, _ in answers[:9]].count(202) == 5
    assert [s for s, _, _ in answers[9:]] == [202] * 5


async def test_untrusted_forwarded_for_is_ignored(limited: Make) -> None:
    """Without a trusted proxy, a new X-Forwarded-For on each request dodges nothing."""
    client = await limited()
    headers = [{"X-Forwarded-For": f"192.0.2.{n}"} for n in range(8)]
    answers = await _post_all(client, [_body(n) for n in range(8)], headers)
    assert sorted(s for s, _, _ in answers) == [202] * 5 + [429] * 3


async def test_one_contact_is_limited_from_every_address(limited: Make) -> None:
    """The same claimed contact from four addresses (any spelling): two tickets, then 429."""
    client = await limited(trusted=("127.0.0.0/8",))
    contacts = ["Li@Example.com", "li@example.com", " LI@EXAMPLE.COM", "li@example.com"]
    bodies = [_body(n, contact=c) for n, c in enumerate(contacts)]
    headers = [{"X-Forwarded-For": f"198.51.100.{n}"} for n in range(4)]
    answers = await _post_all(client, bodies, headers)
    assert sorted(s for s, _, _ in answers) == [202, 202, 429, 429]
    # Someone else is not held back by it.
    assert (await _post_all(client, [_body(9)]))[0][0] == 202


async def test_limited_form_keeps_what_was_typed(limited: Make) -> None:
    """A form post over the limit: 429, the wait in words, and the text still in the form."""
    client = await limited()
    form = {"name": "张三", "contact": "zhang@example.com", "text": "快递三天没动了，单号 SF123"}
    for _ in range(2):
        resp = await client.post("/?lang=zh", data=form, allow_redirects=False)
        assert resp.status == 303
    resp = await client.post("/?lang=zh", data=form, allow_redirects=False)
    html = await resp.text()
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 60
    assert "提交太频繁了" in html and "分钟" in html
    assert "快递三天没动了，单号 SF123</textarea>" in html


async def test_wrong_codes_lock_the_ticket_and_right_codes_never_count(limited: Make) -> None:
    """Right codes never count; three wrong ones lock the ticket (even for its right code)."""
    client = await limited()
    ticket = await post_message(client)
    number, code = ticket["ticket"], ticket["access_code"]
    for _ in range(6):
        resp = await client.get(f"/api/v1/tickets/{number}/status?code={code}")
        assert resp.status == 200
    wrong = "0" * len(code)
    statuses = [
        (await client.get(f"/api/v1/tickets/{number}/status?code={wrong}")).status for _ in range(4)
    ]
    assert statuses == [404, 404, 404, 429]
    page = await client.get(f"/tickets/{number}?code={code}&lang=en")
    assert page.status == 429
    assert "Too many wrong access codes" in await page.text()
    assert "Retry-After" in page.headers
    # The per-ticket lock lasts one token's time (3 per second here), then the owner is back.
    await asyncio.sleep(1.1)
    assert (await client.get(f"/tickets/{number}?code={code}")).status == 200


async def test_wrong_codes_from_one_address_are_limited_across_tickets(limited: Make) -> None:
    """Guessing codes across many ticket numbers from one address stops after its budget."""
    client = await limited()
    numbers = [f"2412{n:02d}0000{n:04d}" for n in range(6)]
    statuses = [
        (await client.post(f"/api/v1/tickets/{n}/messages", json={"code": "x" * 8, "text": "hi"}))
        for n in numbers
    ]
    assert [r.status for r in statuses] == [404] * 4 + [429] * 2
    body = await statuses[-1].json()
    assert body["error"] == "rate_limited"


async def test_replies_on_one_ticket_are_limited(limited: Make) -> None:
    """The status page's reply box takes three replies at once, then 429 keeps the text."""
    client = await limited()
    ticket = await post_message(client)
    await settle(client)
    number, code = ticket["ticket"], ticket["access_code"]
    statuses = []
    for n in range(4):
        resp = await client.post(
            f"/tickets/{number}/replies?lang=en",
            data={"code": code, "text": f"补充 {n}"},
            allow_redirects=False,
        )
        statuses.append(resp.status)
    assert statuses == [303, 303, 303, 429]
    html = await resp.text()
    assert "补充 3</textarea>" in html
    assert re.search(r"about \d+ minutes", html)


async def test_ipv6_clients_count_by_their_64(limited: Make) -> None:
    """Six IPv6 addresses of one /64 share a bucket; the next /64 has its own."""
    client = await limited(trusted=("127.0.0.0/8",))
    headers = [{"X-Forwarded-For": f"2001:db8:1:2::{n + 1:x}"} for n in range(6)]
    headers.append({"X-Forwarded-For": "2001:db8:1:3::1"})
    answers = await _post_all(client, [_body(n) for n in range(7)], headers)
    assert sorted(s for s, _, _ in answers[:6]) == [202] * 5 + [429]
    assert answers[6][0] == 202


def test_shipped_web_yaml_states_the_defaults() -> None:
    """`connectors/web.yaml` shows operators the limits they get when they leave it alone."""
    [web] = [c for c in load_connectors(ROOT / "connectors", env={}) if c.type == "web"]
    assert isinstance(web, WebConfig)
    assert web.limits == WebLimits()
    assert web.attachments == UploadLimits()
    assert web.model_fields_set >= {"limits", "attachments"}
