"""Nothing doubled: duplicate deliveries, double submits and retried posts make one ticket."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from intake_hub.app import METRICS, SERVICES
from intake_hub.storage.models import Message, Ticket
from intake_hub.testing import make_envelope
from tests.web.conftest import AUTH, Client, post_message, settle


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


MESSAGE = {"name": "王女士", "contact": "wang@example.com", "text": "鞋码不对，想换大一码"}
FORM = {"name": "Tom", "contact": "tom@example.com", "text": "The lid is cracked."}
HIDDEN_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def _count_received(client: Client, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the topic of every message intake publishes from now on."""
    bus = client.app[SERVICES].bus
    publish, seen = bus.publish, []

    async def counting(topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic.startswith("ticket.received"):
            seen.append(topic)
        return await publish(topic, *args, **kwargs)

    monkeypatch.setattr(bus, "publish", counting)
    return seen


async def _tickets(client: Client) -> list[dict[str, Any]]:
    page = await (await client.get("/api/v1/tickets", headers=AUTH)).json()
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_concurrent_posts_with_one_key_make_one_ticket(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten posts of one body under one key at once: one ticket, one emit, the same answer."""
    received = _count_received(client, monkeypatch)
    headers = {"Idempotency-Key": "order-4102-retry"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/web/messages", json=MESSAGE, headers=headers) for _ in range(10))
    )
    assert [r.status for r in answers] == [202] * 10
    bodies = [await r.json() for r in answers]
    assert all(b == bodies[0] for b in bodies)
    replayed = [r.headers.get("Idempotent-Replayed") for r in answers]
    assert replayed.count(None) == 1 and replayed.count("true") == 9
    assert len(received) == 1
    await settle(client)
    assert [t["number"] for t in await _tickets(client)] == [bodies[0]["ticket"]]
    late = await client.post("/api/v1/web/messages", json=MESSAGE, headers=headers)
    assert late.status == 202 and late.headers.get("Idempotent-Replayed") == "true"
    assert await late.json() == bodies[0]
    assert len(received) == 1


async def test_the_same_key_with_another_body_is_refused(client: Client) -> None:
    """A key sent again with another body answers 422 naming the header, and makes nothing."""
    headers = {"Idempotency-Key": "k-1"}
    first = await client.post("/api/v1/web/messages", json=MESSAGE, headers=headers)
    assert first.status == 202
    other = MESSAGE | {"text": "其实想退货"}
    refused = await client.post("/api/v1/web/messages", json=other, headers=headers)
    assert refused.status == 422
    assert (await refused.json())["fields"][0]["field"] == "Idempotency-Key"
    assert "access_code" not in await refused.text()
    fresh = await client.post(
        "/api/v1/web/messages", json=other, headers={"Idempotency-Key": "k-2"}
    )
    assert fresh.status == 202 and fresh.headers.get("Idempotent-Replayed") is None
    await settle(client)
    assert len(await _tickets(client)) == 2


async def test_keys_are_bounded_and_optional(client: Client) -> None:
    """A key over 100 characters or unprintable is 422; without a key every post is new."""
    for bad in ("x" * 101, "a\tb"):
        resp = await client.post(
            "/api/v1/web/messages", json=MESSAGE, headers={"Idempotency-Key": bad}
        )
        assert resp.status == 422
        assert (await resp.json())["fields"][0]["field"] == "Idempotency-Key"
    one = await (await client.post("/api/v1/web/messages", json=MESSAGE)).json()
    two = await (await client.post("/api/v1/web/messages", json=MESSAGE)).json()
    assert one["ticket"] != two["ticket"]


async def test_a_key_whose_emit_failed_can_be_used_again(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the bus refuses the message the key is released: the retry makes the ticket."""
    bus = client.app[SERVICES].bus
    publish = bus.publish

    async def refusing(topic: str, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("bus down")

    monkeypatch.setattr(bus, "publish", refusing)
    headers = {"Idempotency-Key": "after-outage"}
    failed = await client.post("/api/v1/web/messages", json=MESSAGE, headers=headers)
    assert failed.status == 500
    monkeypatch.setattr(bus, "publish", publish)
    retry = await client.post("/api/v1/web/messages", json=MESSAGE, headers=headers)
    assert retry.status == 202 and retry.headers.get("Idempotent-Replayed") is None
    number = (await retry.json())["ticket"]
    await settle(client)
    assert [t["number"] for t in await _tickets(client)] == [number]


async def test_a_double_submitted_form_makes_one_ticket(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's one-time key: a double click (two posts at once) and a resubmit, one ticket."""
    received = _count_received(client, monkeypatch)
    page = await (await client.get("/")).text()
    found = HIDDEN_KEY.search(page)
    assert found is not None
    form = FORM | {"idempotency_key": found.group(1)}
    clicks = await asyncio.gather(
        *(client.post("/", data=form, allow_redirects=False) for _ in range(2))
    )
    resubmit = await client.post("/", data=form, allow_redirects=False)
    answers = [*clicks, resubmit]
    assert [r.status for r in answers] == [303] * 3
    assert len({r.headers["Location"] for r in answers}) == 1
    assert len(received) == 1
    await settle(client)
    (ticket,) = await _tickets(client)
    assert answers[0].headers["Location"].startswith(f"/tickets/{ticket['number']}?code=")
    again = HIDDEN_KEY.search(await (await client.get("/")).text())
    assert again is not None and again.group(1) != found.group(1)


async def test_a_form_edited_after_sending_asks_to_send_again(client: Client) -> None:
    """The same page's key with other text re-shows the form with a fresh key; that one goes."""
    page = await (await client.get("/?lang=en")).text()
    found = HIDDEN_KEY.search(page)
    assert found is not None
    form = FORM | {"idempotency_key": found.group(1)}
    assert (await client.post("/", data=form, allow_redirects=False)).status == 303
    edited = form | {"text": "The lid is cracked and the box is wet."}
    shown = await client.post("/?lang=en", data=edited, allow_redirects=False)
    assert shown.status == 422
    html = await shown.text()
    assert "already sent" in html and "the box is wet" in html
    fresh = HIDDEN_KEY.search(html)
    assert fresh is not None and fresh.group(1) != found.group(1)
    sent = await client.post("/", data=edited | {"idempotency_key": fresh.group(1)})
    assert sent.status == 200
    await settle(client)
    assert len(await _tickets(client)) == 2


async def test_a_form_without_its_key_still_sends(client: Client) -> None:
    """A page cached from before the key existed posts without one: a ticket each time."""
    first = await client.post("/", data=FORM, allow_redirects=False)
    second = await client.post("/", data=FORM, allow_redirects=False)
    assert (first.status, second.status) == (303, 303)
    assert first.headers["Location"] != second.headers["Location"]


async def test_an_agent_reply_key_reused_with_other_text_is_refused(client: Client) -> None:
    """An agent's Idempotency-Key sent again with other text is 422; nothing else is stored."""
    body = await post_message(client)
    await settle(client)
    url = f"/api/v1/tickets/{body['ticket']}/replies"
    headers = AUTH | {"Idempotency-Key": "draft-1"}
    assert (await client.post(url, json={"text": "已处理"}, headers=headers)).status == 201
    refused = await client.post(url, json={"text": "另一段话"}, headers=headers)
    assert refused.status == 422
    assert (await refused.json())["fields"][0]["field"] == "Idempotency-Key"
    same = await client.post(url, json={"text": "已处理"}, headers=headers)
    assert same.status == 201 and same.headers.get("Idempotent-Replayed") == "true"
    ticket = await Ticket.get(number=body["ticket"])
    assert await Message.filter(ticket_id=ticket.id, direction="out", kind=None).count() == 1
