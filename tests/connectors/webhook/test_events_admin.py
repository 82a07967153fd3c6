"""The delivery log and manual redelivery, through the admin API and the CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from intake_hub.cli import main
from intake_hub.storage import agents, app_events, db
from intake_hub.storage.models import AppEvent
from intake_hub.storage.writer import TicketWriter
from intake_hub.testing import make_envelope
from tests.connectors.webhook.conftest import FakeApp, eventually
from tests.connectors.webhook.test_events import (  # noqa: F401 (the client fixture)
    app_ticket,
    client_fixture,
    dispatcher,
)
from tests.web.conftest import AUTH, Client

LOG = "/api/v1/admin/webhooks/events"


async def _delivered(count: int) -> bool:
    return await AppEvent.filter(status="delivered").count() == count


async def _row_is(webhook_id: str, status: str) -> bool:
    return await AppEvent.filter(webhook_id=webhook_id, status=status).exists()


async def test_the_log_shows_attempts_and_an_admin_redelivers(
    client: Client, fake_app: FakeApp
) -> None:
    """The log lists code, latency and attempts; redeliver sends the same webhook id again."""
    number = await app_ticket(client)
    total = await AppEvent.all().count()
    fake_app.fail_next = 1
    sender = dispatcher(fake_app)
    await sender.start()
    try:
        await eventually(lambda: _delivered(total))
        resp = await client.get(f"{LOG}?ticket={number}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        items = (await resp.json())["items"]
        assert len(items) == total and {i["status"] for i in items} == {"delivered"}
        assert all(i["last_status"] == 204 and i["last_latency_ms"] >= 0 for i in items)
        assert sorted(i["attempts"] for i in items)[-1] == 2
        assert all(i["next_at"] is None for i in items)
        created = next(i for i in items if i["type"] == "ticket.created")
        again = await client.post(f"{LOG}/{created['webhook_id']}/redeliver", headers=AUTH)
        assert again.status == 200, await again.text()
        assert (await again.json())["status"] == "pending"
        await eventually(lambda: _count(fake_app, created["webhook_id"], 2))
        # The app's 2xx is in; the sender marks the row just after it (stopping the sender
        # in between leaves it pending, to be sent again: at least once, by design).
        await eventually(lambda: _row_is(created["webhook_id"], "delivered"))
    finally:
        await sender.stop()
    assert (await AppEvent.get(webhook_id=created["webhook_id"])).status == "delivered"
    pending = await client.get(f"{LOG}?status=pending", headers=AUTH)
    assert (await pending.json())["items"] == []


async def _count(fake: FakeApp, webhook_id: str, n: int) -> bool:
    return fake.ids.count(webhook_id) == n


async def test_only_admins_see_the_log_and_unknown_ids_are_404(client: Client) -> None:
    """An agent gets 403 on both routes; an unknown webhook id is 404; a bad status is 422."""
    token = await agents.add_agent("li", "小李", "agent")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get(LOG, headers=bearer)).status == 403
    assert (await client.post(f"{LOG}/evt_x/redeliver", headers=bearer)).status == 403
    assert (await client.post(f"{LOG}/evt_x/redeliver", headers=AUTH)).status == 404
    assert (await client.get(f"{LOG}?status=lost", headers=AUTH)).status == 422


async def _seed(url: str) -> str:
    """A stored app ticket whose ticket.created is dead; its webhook id."""
    await db.open_db(url)
    try:
        env = make_envelope("想退货", channel="webhook", source="webhook/app", customer="u-9")
        await TicketWriter().save(env)
        row = await AppEvent.get(type="ticket.created")
        await AppEvent.filter(id=row.id).update(status="dead", attempts=7, last_status=500)
        return row.webhook_id
    finally:
        await db.close_db()


async def _status(url: str, webhook_id: str) -> str:
    await db.open_db(url)
    try:
        return (await AppEvent.get(webhook_id=webhook_id)).status
    finally:
        await db.close_db()


def test_cli_lists_and_redelivers(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`webhooks list --status dead` shows the event; `redeliver` puts it back; unknown is 1."""
    monkeypatch.setenv("INTAKE_HUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INTAKE_HUB_DATABASE_URL", db_url)
    webhook_id = asyncio.run(_seed(db_url))
    assert main(["webhooks", "list", "--status", "dead"]) == 0
    out = capsys.readouterr().out
    assert webhook_id in out and "ticket.created" in out and "500" in out
    assert main(["webhooks", "list", "--json"]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [i["webhook_id"] for i in listed] == [webhook_id]
    assert main(["webhooks", "redeliver", webhook_id]) == 0
    assert asyncio.run(_status(db_url, webhook_id)) == "pending"
    assert main(["webhooks", "redeliver", webhook_id, "evt_nope"]) == 1
    assert "no event evt_nope" in capsys.readouterr().err


async def test_old_delivered_and_dead_events_are_forgotten_pending_ones_kept(
    client: Client,
) -> None:
    """Past the retention, delivered and dead events leave the log; owed ones never do."""
    for customer in ("u-1", "u-2"):
        await app_ticket(client, customer=customer)
    rows = await AppEvent.all().order_by("id")
    assert len(rows) >= 4
    source = rows[0].source
    old = datetime.now(UTC) - timedelta(days=31)
    states = ("delivered", "dead", "pending", "delivered")
    for row, status in zip(rows, states, strict=False):
        await AppEvent.filter(id=row.id).update(status=status, created_at=old)
    # The last one is delivered but recent: kept.
    await AppEvent.filter(id=rows[3].id).update(created_at=datetime.now(UTC))
    assert await app_events.prune(source, datetime.now(UTC) - timedelta(days=30)) == 2
    left = {r.webhook_id: r.status for r in await AppEvent.all()}
    assert left[rows[2].webhook_id] == "pending" and left[rows[3].webhook_id] == "delivered"
    assert rows[0].webhook_id not in left and rows[1].webhook_id not in left
