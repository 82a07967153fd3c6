"""Events out to an app: written with each change, signed, retried, in order, sent once."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from intake_hub.app import SERVICES, create_app
from intake_hub.config import Settings
from intake_hub.connectors.webhook.config import WebhookConfig
from intake_hub.connectors.webhook.events import Breaker, EventDispatcher
from intake_hub.storage import agents
from intake_hub.storage.models import AppEvent, Ticket
from intake_hub.testing import make_envelope
from tests.connectors.webhook.conftest import INBOUND, SECRET, FakeApp, eventually
from tests.web.conftest import AUTH, Client, settle


@pytest.fixture(name="client")
async def client_fixture(
    settings: Settings, db_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Client:
    """The whole service on SQLite and PostgreSQL (the app's instance is not mounted)."""
    return await aiohttp_client(create_app(replace(settings, database_url=db_url)))


def dispatcher(fake: FakeApp, **tuning: Any) -> EventDispatcher:
    """A sender for instance `app` with test-fast polling, retries and leases."""
    config = WebhookConfig(name="app", secrets=INBOUND, events_url=fake.url, events_secret=SECRET)
    fast: dict[str, Any] = {"poll_s": 0.02, "backoff_s": (0.05, 0.1), "lease_s": 0.5}
    return EventDispatcher(config, **(fast | tuning))


async def app_ticket(
    client: Client, text: str = "尺码不对，想换大一码", customer: str = "u-1001"
) -> str:
    """A message from the app's customer through the pipeline; its ticket number."""
    env = make_envelope(text, channel="webhook", source="webhook/app", customer=customer)
    await client.app[SERVICES].intake.emit(env)
    await settle(client)
    return env.ticket


async def test_a_new_ticket_reports_created_then_its_auto_reply(
    client: Client, fake_app: FakeApp
) -> None:
    """The pipeline writes ticket.created and ticket.replied; the app gets both, in order."""
    number = await app_ticket(client)
    rows = await AppEvent.filter(number=number).order_by("id")
    assert [r.type for r in rows][:1] == ["ticket.created"]
    assert rows[-1].type == "ticket.replied"
    sender = dispatcher(fake_app)
    await sender.start()
    try:
        await eventually(lambda: _delivered(len(rows)))
    finally:
        await sender.stop()
    assert fake_app.of(number) == [r.type for r in rows]
    created = fake_app.received[0][1]
    assert created["data"]["customer"]["id"] == "u-1001"
    assert created["data"]["status"] in ("received", "in_progress")
    reply = fake_app.received[-1][1]["data"]["message"]
    assert reply["by"] == "auto" and reply["text"]


async def _delivered(count: int) -> bool:
    return await AppEvent.filter(status="delivered").count() == count


async def test_a_redelivered_envelope_makes_no_second_event(client: Client) -> None:
    """The same envelope twice through the pipeline: one ticket.created, one ticket.replied."""
    env = make_envelope("想退货", channel="webhook", source="webhook/app", customer="u-7")
    for _ in range(2):
        await client.app[SERVICES].intake.emit(env)
        await settle(client)
    types = [r.type for r in await AppEvent.filter(number=env.ticket).order_by("id")]
    assert types.count("ticket.created") == 1
    assert types.count("ticket.replied") <= 1


async def test_other_channels_have_no_app_events(client: Client) -> None:
    """A web ticket writes nothing to the app outbox."""
    env = make_envelope("想退货", channel="web", identity="claimed")
    await client.app[SERVICES].intake.emit(env)
    await settle(client)
    assert await Ticket.filter(number=env.ticket).exists()
    assert not await AppEvent.all().exists()


async def test_agent_reply_status_and_reassign_report_in_order(
    client: Client, fake_app: FakeApp
) -> None:
    """Reply, reassign and close through the API give replied, assigned, status_changed."""
    number = await app_ticket(client)
    await agents.add_agent("li", "小李", "agent")
    base = f"/api/v1/tickets/{number}"
    resp = await client.post(f"{base}/replies", json={"text": "已登记换货"}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        f"{base}/assign", json={"assignee": "li", "reason": "换货专员"}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{base}/status", json={"status": "resolved"}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    count = await AppEvent.filter(number=number).count()
    sender = dispatcher(fake_app)
    await sender.start()
    try:
        await eventually(lambda: _delivered(count))
    finally:
        await sender.stop()
    tail = fake_app.of(number)[-3:]
    assert tail == ["ticket.replied", "ticket.assigned", "ticket.status_changed"]
    by_type = {p["type"]: p["data"] for _, p in fake_app.received}
    assert by_type["ticket.replied"]["message"]["text"] == "已登记换货"
    assert by_type["ticket.replied"]["message"]["by"] == "agent"
    assert by_type["ticket.assigned"]["assignee"] == "li"
    changed = by_type["ticket.status_changed"]
    assert changed["status"] == "resolved" and changed["previous"] == "in_progress"


async def test_failures_are_retried_once_each_and_in_order(
    client: Client, fake_app: FakeApp
) -> None:
    """The app fails the first two posts: every event arrives once, each ticket's in order."""
    numbers = [await app_ticket(client, f"问题 {i}", customer=f"u-{i}") for i in range(3)]
    expected = {
        n: [r.type for r in await AppEvent.filter(number=n).order_by("id")] for n in numbers
    }
    fake_app.fail_next = 2
    sender = dispatcher(fake_app)
    await sender.start()
    try:
        await eventually(lambda: _delivered(sum(map(len, expected.values()))))
    finally:
        await sender.stop()
    assert fake_app.refused == 2
    assert len(fake_app.ids) == len(set(fake_app.ids))
    for number, types in expected.items():
        assert fake_app.of(number) == types
    retried = await AppEvent.filter(attempts__gt=1).count()
    assert 1 <= retried <= 2
    row = await AppEvent.filter(attempts__gt=1).first()
    assert row is not None and row.last_status == 204 and row.delivered_at is not None


async def test_past_the_horizon_an_event_is_dead_and_the_next_goes(
    client: Client, fake_app: FakeApp
) -> None:
    """With a zero horizon a failed event is dead at once; the ticket's next one still goes."""
    number = await app_ticket(client)
    rows = await AppEvent.filter(number=number).order_by("id")
    fake_app.fail_next = 1
    sender = dispatcher(fake_app, horizon_s=0.0)
    await sender.start()
    try:
        await eventually(lambda: _delivered(len(rows) - 1))
    finally:
        await sender.stop()
    first = await AppEvent.get(id=rows[0].id)
    assert (first.status, first.last_status, first.attempts) == ("dead", 503, 1)
    assert fake_app.of(number) == [r.type for r in rows[1:]]


async def test_the_breaker_pauses_the_endpoint_after_n_failures(
    client: Client, fake_app: FakeApp
) -> None:
    """After three failures in a row nothing is sent until the cool-down; a probe reopens."""
    for i in range(4):
        await app_ticket(client, f"问题 {i}", customer=f"u-{i}")
    total = await AppEvent.all().count()
    fake_app.fail_next = 1000
    breaker = Breaker(threshold=3, cooldown_s=3600.0)
    sender = dispatcher(fake_app, breaker=breaker, backoff_s=(0.01,))
    await sender.start()
    try:
        await eventually(lambda: _is(breaker.state == "open"))
        tried = fake_app.refused
        assert tried >= 3
        for _ in range(10):
            assert await sender.run_once() == 0
        assert fake_app.refused == tried  # open: the endpoint is left alone
        fake_app.fail_next = 0
        breaker.open_until = time.monotonic()  # the cool-down is over: half-open
        await eventually(lambda: _delivered(total))
    finally:
        await sender.stop()
    assert breaker.state == "closed"
    assert len(fake_app.ids) == len(set(fake_app.ids)) == total


async def _is(value: bool) -> bool:
    return value


def test_a_failed_probe_opens_the_breaker_for_longer() -> None:
    """Half-open allows one probe; its failure re-opens for twice the cool-down."""
    breaker = Breaker(threshold=2, cooldown_s=10.0)
    assert breaker.permits() is None
    breaker.failure()
    breaker.failure()
    assert (breaker.state, breaker.permits()) == ("open", 0)
    breaker.open_until = time.monotonic() - 1
    assert (breaker.state, breaker.permits()) == ("half_open", 1)
    breaker.started(1)
    assert breaker.permits() == 0
    breaker.failure()
    assert (breaker.state, breaker.cooldown_s) == ("open", 20.0)
    breaker.open_until = time.monotonic() - 1
    breaker.started(1)
    breaker.success()
    assert (breaker.state, breaker.permits(), breaker.cooldown_s) == ("closed", None, 10.0)
