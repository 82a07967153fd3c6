"""The app webhook through the real app: signed events in, tickets out, refusals store nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from intake_hub.storage.models import Customer, CustomerIdentity, Ticket
from tests.connectors.webhook.conftest import message, send, stored
from tests.connectors.webhook.kit import OTHER_SECRET, SECRET, signed
from tests.web.conftest import AUTH, Client, settle

ROGUE = "whsec_cm9ndWUtc2VjcmV0LW5vYm9keS1jb25maWd1cmVk"


async def _accepted(client: Client, body: bytes, msg_id: str, **kw: Any) -> dict[str, Any]:
    resp = await send(client, body, msg_id, **kw)
    assert resp.status == 202, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_a_signed_message_makes_a_verified_webhook_ticket(client: Client) -> None:
    """202 with the number and status URL; agents see a webhook ticket of a verified customer."""
    body = message(
        order_id="4102938475610",
        attachments=[
            {
                "url": "https://cdn.shop.example/a.jpg",
                "name": "a.jpg",
                "content_type": "image/jpeg",
                "size": 1200,
            },
        ],
    )
    answer = await _accepted(client, body, "msg_first")
    number = answer["ticket"]
    assert answer["status_url"].startswith(f"http://testserver/tickets/{number}?code=")
    await settle(client)
    resp = await client.get(f"/api/v1/tickets/{number}", headers=AUTH)
    ticket = await resp.json()
    assert ticket["channel"] == "webhook"
    assert ticket["customer"]["verified"] is True
    assert ticket["customer"]["name"] == "李雷"
    # The app's own user id, as agents look the customer up in the app.
    assert ticket["customer"]["key"] == "app:u_1001"
    assert ticket["order_id"] == "4102938475610"
    row = await Ticket.get(number=number)
    assert (row.source, row.customer_key) == ("webhook/app", "app:u_1001")
    ident = await CustomerIdentity.get(channel="webhook", key="app:u_1001")
    assert ident.customer_id == row.customer_id  # type: ignore[attr-defined]
    [inbound] = [m for m in ticket["messages"] if m["direction"] == "in"]
    assert inbound["attachments"][0]["name"] == "a.jpg"


async def test_a_follow_up_from_the_same_app_user_joins_the_open_ticket(client: Client) -> None:
    """The verified identity continues its open ticket; another user of the app does not."""
    first = await _accepted(client, message(), "msg_a")
    await settle(client)
    await _accepted(client, message(text="还有，能改地址吗"), "msg_b")
    await _accepted(client, message(customer="u_2002"), "msg_c")
    await settle(client)
    ticket = await (await client.get(f"/api/v1/tickets/{first['ticket']}", headers=AUTH)).json()
    texts = [m["text"] for m in ticket["messages"] if m["direction"] == "in"]
    assert texts == ["快递三天没动了", "还有，能改地址吗"]
    assert await Ticket.all().count() == 2


async def test_data_ticket_joins_only_the_customers_own_ticket(client: Client) -> None:
    """Naming one's own ticket joins it; another customer's is a 422 and stores nothing."""
    mine = await _accepted(client, message(), "msg_mine")
    theirs = await _accepted(client, message(customer="u_other"), "msg_theirs")
    await settle(client)
    before = await stored()
    resp = await send(client, message(text="再补充一句", ticket=theirs["ticket"]), "msg_x")
    assert resp.status == 422
    assert (await resp.json())["fields"][0]["field"] == "data.ticket"
    unknown = await send(client, message(ticket="0K3M7Q2X9HT"), "msg_y")
    assert unknown.status == 409
    bogus = await send(client, message(ticket="not-a-number"), "msg_z")
    assert bogus.status == 422
    assert await stored() == before
    joined = await _accepted(client, message(text="再补充一句", ticket=mine["ticket"]), "msg_ok")
    await settle(client)
    # The follow-up's own number names the ticket it joined, for the app to use next time.
    await _accepted(client, message(text="第三句", ticket=joined["ticket"]), "msg_alias")
    await settle(client)
    ticket = await (await client.get(f"/api/v1/tickets/{mine['ticket']}", headers=AUTH)).json()
    texts = [m["text"] for m in ticket["messages"] if m["direction"] == "in"]
    assert texts[-2:] == ["再补充一句", "第三句"]


async def test_a_repeat_answers_the_same_and_stores_nothing(client: Client) -> None:
    """A retry (new timestamp, same id and body) gets the first answer, marked replayed."""
    body = message()
    first = await send(client, body, "msg_retry", at=time.time() - 60)
    await settle(client)
    before = await stored()
    again = await send(client, body, "msg_retry")
    assert again.status == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    other = await send(client, message(text="另一条"), "msg_retry")
    assert other.status == 422
    assert (await other.json())["fields"][0]["field"] == "webhook-id"
    await settle(client)
    assert await stored() == before


async def test_concurrent_duplicates_make_one_ticket(client: Client) -> None:
    """The same signed request twice at once: one ticket, both answers the same."""
    body = message()
    headers = signed(body, "msg_twice")
    a, b = await asyncio.gather(
        client.post("/hooks/app", data=body, headers=headers),
        client.post("/hooks/app", data=body, headers=headers),
    )
    assert (a.status, b.status) == (202, 202)
    assert await a.json() == await b.json()
    assert {a.headers.get("Idempotent-Replayed"), b.headers.get("Idempotent-Replayed")} == {
        None,
        "true",
    }
    await settle(client)
    assert (await stored())[:2] == (1, 1)


async def test_key_rotation_accepts_either_secret_and_both_entries(client: Client) -> None:
    """Signed with the old, the new, or both secrets' entries: each accepted."""
    body = message()
    await _accepted(client, body, "msg_old", secret=SECRET)
    await _accepted(client, body, "msg_new", secret=OTHER_SECRET)
    headers = signed(body, "msg_both", ROGUE)
    old = signed(body, "msg_both", SECRET)["webhook-signature"]
    new = signed(body, "msg_both", OTHER_SECRET)["webhook-signature"]
    headers["webhook-signature"] = f"{new} {old}"
    resp = await client.post("/hooks/app", data=body, headers=headers)
    assert resp.status == 202


def _unsigned(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json"}


@pytest.mark.parametrize(
    "case",
    ["forged", "tampered", "stale", "future", "unsigned", "no-timestamp", "garbage-signature"],
)
async def test_unverified_requests_are_401_and_store_nothing(client: Client, case: str) -> None:
    """Wrong secret, changed body, old or future timestamp, missing headers: 401, nothing kept."""
    body = message()
    if case == "forged":
        resp = await send(client, body, "msg_f", secret=ROGUE)
    elif case == "tampered":
        headers = signed(body, "msg_t")
        resp = await client.post("/hooks/app", data=message(text="改过的"), headers=headers)
    elif case == "stale":
        resp = await send(client, body, "msg_s", at=time.time() - 400)
    elif case == "future":
        resp = await send(client, body, "msg_u", at=time.time() + 400)
    elif case == "unsigned":
        resp = await client.post("/hooks/app", data=body, headers=_unsigned(body))
    elif case == "no-timestamp":
        headers = signed(body, "msg_n")
        del headers["webhook-timestamp"]
        resp = await client.post("/hooks/app", data=body, headers=headers)
    else:
        resp = await send(client, body, "msg_g", **{"webhook-signature": "v1,***"})
    assert resp.status == 401
    answer = await resp.json()
    assert answer["error"] == "unauthorized"
    assert "whsec" not in await resp.text()
    await settle(client)
    assert await stored() == (0, 0, 0)


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        ({"type": "order.shipped", "data": {}}, 422, "type"),
        ({"data": {}}, 422, "type"),
        (
            {"type": "message.created", "data": {"customer": {}, "text": "x"}},
            422,
            "data.customer.id",
        ),
        (
            {
                "type": "message.created",
                "data": {"customer": {"id": "1"}, "text": "x", "coupon": "FREE"},
            },
            422,
            "data.coupon",
        ),
        (
            {
                "type": "message.created",
                "data": {
                    "customer": {"id": "1"},
                    "text": "x",
                    "attachments": [
                        {"url": "file:///etc/passwd", "name": "p", "content_type": "t", "size": 1}
                    ],
                },
            },
            422,
            "data.attachments.0.url",
        ),
        (
            {"type": "customer.updated", "data": {"customer": {"id": "1", "tags": ["x" * 40]}}},
            422,
            "data.customer.tags.0",
        ),
        ([1, 2], 422, "body"),
    ],
)
async def test_bad_events_are_422_naming_the_field(
    client: Client, event: Any, status: int, field: str
) -> None:
    """Unknown type or a schema violation: 422 naming the field; nothing stored."""
    resp = await send(client, orjson.dumps(event), "msg_bad")
    assert resp.status == status
    assert field in [f["field"] for f in (await resp.json())["fields"]]
    assert await stored() == (0, 0, 0)


async def test_not_json_is_400_and_oversize_413(client: Client) -> None:
    """A signed body that is not JSON: 400; a body over the limit: 413 before any check."""
    resp = await send(client, b"{not json", "msg_j")
    assert resp.status == 400
    big = message(text="长" * 100_000)
    resp = await send(client, big, "msg_big")
    assert resp.status == 413
    resp = await client.post("/hooks/app", data=big)
    assert resp.status == 413
    assert await stored() == (0, 0, 0)


async def test_customer_updated_records_the_verified_profile(client: Client) -> None:
    """A new app user is made verified; an update changes what it names; vip tags the next."""
    update = {
        "type": "customer.updated",
        "data": {
            "customer": {"id": "u_9", "name": "韩梅梅", "phone": "13800138000", "tags": ["VIP"]}
        },
    }
    body = orjson.dumps(update)
    resp = await send(client, body, "msg_p1")
    assert (resp.status, await resp.json()) == (200, {"customer": "u_9"})
    again = await send(client, body, "msg_p1")
    assert again.headers["Idempotent-Replayed"] == "true"
    ident = await CustomerIdentity.get(channel="webhook", key="app:u_9")
    customer = await Customer.get(id=ident.customer_id)  # type: ignore[attr-defined]
    assert (customer.name, customer.phone, customer.vip, customer.verified) == (
        "韩梅梅",
        "13800138000",
        True,
        True,
    )
    update["data"] = {"customer": {"id": "u_9", "email": "Han@Example.com"}}
    assert (await send(client, orjson.dumps(update), "msg_p2")).status == 200
    await customer.refresh_from_db()
    assert (customer.name, customer.email, customer.vip) == ("韩梅梅", "han@example.com", True)
    answer = await _accepted(client, message(customer="u_9", text="我的退款呢"), "msg_m")
    await settle(client)
    ticket = await (await client.get(f"/api/v1/tickets/{answer['ticket']}", headers=AUTH)).json()
    assert ticket["customer"]["id"] == str(customer.id)
    assert ticket["customer"]["vip"] is True
    assert await Customer.all().count() == 1
