"""Events survive the app being down while intake-hub restarts, and two senders send once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage.models import AppEvent
from tests.connectors.webhook.conftest import FakeApp, eventually
from tests.connectors.webhook.test_events import (  # noqa: F401 (the client fixture)
    app_ticket,
    client_fixture,
    dispatcher,
)
from tests.web.conftest import Client


async def _events(number: str) -> AsyncIterator[AppEvent]:
    for row in await AppEvent.filter(number=number).order_by("id"):
        yield row


async def _all_delivered() -> bool:
    return not await AppEvent.exclude(status="delivered").exists()


async def _tried() -> bool:
    return await AppEvent.filter(attempts__gte=2).exists()


async def test_app_down_across_a_restart_gets_everything_once_in_order(
    settings: Settings,
    db_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
    fake_app: FakeApp,
) -> None:
    """Down while intake-hub stops and starts on the same database: all arrive once, in order."""
    configured = replace(settings, database_url=db_url)
    first = await aiohttp_client(create_app(configured))
    numbers = [await app_ticket(first, f"问题 {i}", customer=f"u-{i}") for i in range(3)]
    await fake_app.stop()
    sender = dispatcher(fake_app)
    await sender.start()
    await eventually(_tried)
    await sender.stop()
    expected = {n: [r.type async for r in _events(n)] for n in numbers}
    await first.close()

    await fake_app.start()
    second = await aiohttp_client(create_app(configured))
    assert second.server is not None
    sender = dispatcher(fake_app)
    await sender.start()
    try:
        await eventually(_all_delivered)
    finally:
        await sender.stop()
    assert len(fake_app.ids) == len(set(fake_app.ids)) == sum(map(len, expected.values()))
    for number, types in expected.items():
        assert fake_app.of(number) == types


async def test_two_senders_on_one_database_send_each_event_once(
    client: Client, fake_app: FakeApp
) -> None:
    """Two processes' senders poll the same outbox: the lease gives each event to one."""
    numbers = [await app_ticket(client, f"问题 {i}", customer=f"u-{i}") for i in range(4)]
    senders = [dispatcher(fake_app, poll_s=0.0), dispatcher(fake_app, poll_s=0.0)]
    for sender in senders:
        await sender.start()
    try:
        await eventually(_all_delivered)
    finally:
        for sender in senders:
            await sender.stop()
    assert len(fake_app.ids) == len(set(fake_app.ids)) == await AppEvent.all().count()
    for number in numbers:
        want = [r.type for r in await AppEvent.filter(number=number).order_by("id")]
        assert fake_app.of(number) == want
