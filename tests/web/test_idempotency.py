"""Nothing doubled: the same envelope delivered many times at once makes one ticket."""

from __future__ import annotations

import asyncio

from intake_hub.app import METRICS, SERVICES
from intake_hub.testing import make_envelope
from tests.web.conftest import AUTH, Client, settle


async def test_concurrent_duplicate_deliveries_store_one_message(client: Client) -> None:
    """Twenty copies of one envelope, published together, give one ticket with one message."""
    env = make_envelope(customer="dup@example.com")
    intake = client.app[SERVICES].intake
    await asyncio.gather(*(intake.emit(env) for _ in range(20)))
    await settle(client)
    ticket = await (await client.get(f"/api/v1/tickets/{env.ticket}", headers=AUTH)).json()
    assert [m["direction"] for m in ticket["messages"]] == ["in", "out"]
    page = await (await client.get("/api/v1/tickets", headers=AUTH)).json()
    assert len(page["items"]) == 1
    stored = client.app[METRICS].stored.labels("web")._value.get()
    assert stored == 1


async def test_provider_resend_with_a_new_envelope_id_is_one_message(client: Client) -> None:
    """A provider re-sending the same message id (new envelope) does not add a message."""
    first = make_envelope(customer="resend@example.com", external_id="provider-msg-1")
    again = make_envelope(customer="resend@example.com", external_id="provider-msg-1")
    intake = client.app[SERVICES].intake
    await intake.emit(first)
    await settle(client)
    await intake.emit(again)
    await settle(client)
    ticket = await (await client.get(f"/api/v1/tickets/{first.ticket}", headers=AUTH)).json()
    assert len([m for m in ticket["messages"] if m["direction"] == "in"]) == 1
