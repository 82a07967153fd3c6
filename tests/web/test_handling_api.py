"""Agents answer customers and move tickets on; the customer sees it, the audit trail says who."""

from __future__ import annotations

from typing import Any

from intake_hub.storage import agents
from intake_hub.storage.models import Agent, Event, Message, Ticket
from tests.web.conftest import AUTH, Client, post_message, settle

# The shipped routing sends this size-exchange message to the after-sales team.
TEAM = "aftersales"


async def _ticket(client: Client, **fields: Any) -> dict[str, Any]:
    body = await post_message(client, **fields)
    await settle(client)
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _status_json(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    url = f"/api/v1/tickets/{body['ticket']}/status?code={body['access_code']}"
    resp = await client.get(url)
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


async def test_agent_reply_reaches_the_status_page_and_takes_the_ticket(client: Client) -> None:
    """An agent of the team answers an unassigned ticket: stored, shown, ticket taken."""
    body = await _ticket(client)
    ticket = await Ticket.get(number=body["ticket"])
    assert (ticket.team, ticket.assignee_id) == (TEAM, None)  # type: ignore[attr-defined]
    token = await agents.add_agent("li", "小李", "agent", team=TEAM)
    resp = await client.post(
        f"/api/v1/tickets/{body['ticket']}/replies",
        json={"text": "您好，已为您登记换大一码，新尺码今天发出。"},
        headers=_bearer(token),
    )
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert (out["status"], out["assignee"], out["delivery"]) == ("in_progress", "li", "status_page")
    seen = await _status_json(client, body)
    assert seen["status"] == "in_progress"
    last = seen["messages"][-1]
    assert (last["direction"], last["text"], last["kind"]) == (
        "out",
        "您好，已为您登记换大一码，新尺码今天发出。",
        None,
    )
    event = await Event.get(ticket_id=ticket.id, kind="replied")
    assert event.actor == "li"
    assert (await Agent.get(id="li")).open_count == 1


async def test_the_same_idempotency_key_stores_one_reply(client: Client) -> None:
    """A retried reply with the same Idempotency-Key answers the same and stores nothing new."""
    body = await _ticket(client)
    url = f"/api/v1/tickets/{body['ticket']}/replies"
    headers = AUTH | {"Idempotency-Key": "draft-7781"}
    first = await client.post(url, json={"text": "已处理"}, headers=headers)
    again = await client.post(url, json={"text": "已处理"}, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await first.json())["message"] == (await again.json())["message"]
    ticket = await Ticket.get(number=body["ticket"])
    assert await Message.filter(ticket_id=ticket.id, direction="out", kind=None).count() == 1
    other = await client.post(url, json={"text": "补充说明"}, headers=AUTH)
    assert other.status == 201 and other.headers.get("Idempotent-Replayed") is None
    assert await Message.filter(ticket_id=ticket.id, direction="out", kind=None).count() == 2


async def test_agents_work_only_their_own_or_their_teams_tickets(client: Client) -> None:
    """Another team's agent gets 404 (not theirs to read), a teammate once someone owns it 403."""
    body = await _ticket(client)
    number = body["ticket"]
    outsider = await agents.add_agent("zhao", "小赵", "agent", team="presales")
    owner = await agents.add_agent("li", "小李", "agent", team=TEAM)
    mate = await agents.add_agent("chen", "小陈", "agent", team=TEAM)
    boss = await agents.add_agent("boss", "主管", "supervisor", team=TEAM)
    reply = f"/api/v1/tickets/{number}/replies"
    refused = await client.post(reply, json={"text": "我来"}, headers=_bearer(outsider))
    assert refused.status == 404
    assert (await refused.json())["error"] == "not_found"
    assert (await client.post(reply, json={"text": "我来"}, headers=_bearer(owner))).status == 201
    late = await client.post(reply, json={"text": "我也来"}, headers=_bearer(mate))
    assert late.status == 403
    assert (await late.json())["error"] == "forbidden"
    moved = await client.post(
        f"/api/v1/tickets/{number}/status", json={"status": "closed"}, headers=_bearer(mate)
    )
    assert moved.status == 403
    assert (
        await client.post(reply, json={"text": "主管跟进"}, headers=_bearer(boss))
    ).status == 201
    ticket = await Ticket.get(number=number)
    assert (ticket.status, ticket.assignee_id) == ("in_progress", "li")  # type: ignore[attr-defined]
    actors = await Event.filter(ticket_id=ticket.id, kind="replied").values_list("actor", flat=True)
    assert sorted(actors) == ["boss", "li"]


async def test_resolving_frees_the_agents_slot_and_reopening_takes_it_back(client: Client) -> None:
    """Resolve: closed_at set, slot released, customer sees it; reopen counts the slot again."""
    body = await _ticket(client)
    number = body["ticket"]
    token = await agents.add_agent("li", "小李", "agent", team=TEAM)
    reply = f"/api/v1/tickets/{number}/replies"
    await client.post(reply, json={"text": "好的"}, headers=_bearer(token))
    url = f"/api/v1/tickets/{number}/status"
    resp = await client.post(
        url, json={"status": "resolved", "note": "已换货"}, headers=_bearer(token)
    )
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert (out["previous"], out["status"], out["notified"]) == ("in_progress", "resolved", False)
    ticket = await Ticket.get(number=number)
    assert ticket.closed_at is not None
    assert (await Agent.get(id="li")).open_count == 0
    assert (await _status_json(client, body))["status"] == "resolved"
    event = await Event.get(ticket_id=ticket.id, kind="status_changed")
    assert (event.actor, event.data) == (
        "li",
        {"from": "in_progress", "to": "resolved", "note": "已换货"},
    )
    again = await client.post(url, json={"status": "resolved"}, headers=_bearer(token))
    assert again.status == 200 and (await again.json())["previous"] == "resolved"
    assert await Event.filter(ticket_id=ticket.id, kind="status_changed").count() == 1
    reopened = await client.post(url, json={"status": "in_progress"}, headers=_bearer(token))
    assert reopened.status == 200
    assert (await Agent.get(id="li")).open_count == 1
    assert (await Ticket.get(number=number)).closed_at is None


async def test_bad_status_requests_are_4xx_with_the_field_named(client: Client) -> None:
    """`received`, unknown statuses, blank text, bad keys, no token, unknown ticket: clear 4xx."""
    body = await _ticket(client)
    number = body["ticket"]
    status, reply = f"/api/v1/tickets/{number}/status", f"/api/v1/tickets/{number}/replies"
    for payload in ({"status": "received"}, {"status": "done"}, {}, {"status": "closed", "x": 1}):
        resp = await client.post(status, json=payload, headers=AUTH)
        assert resp.status == 422, payload
        assert (await resp.json())["fields"], payload
    blank = await client.post(reply, json={"text": "   "}, headers=AUTH)
    assert blank.status == 422
    assert (await blank.json())["fields"][0]["field"] == "text"
    badkey = await client.post(
        reply, json={"text": "好"}, headers=AUTH | {"Idempotency-Key": "x" * 101}
    )
    assert badkey.status == 422
    assert (await badkey.json())["fields"][0]["field"] == "Idempotency-Key"
    assert (await client.post(reply, json={"text": "好"})).status == 401
    text = await client.post(reply, data="好", headers=AUTH)
    assert text.status == 415
    missing = await client.post(
        "/api/v1/tickets/0000-0000-00A/status", json={"status": "closed"}, headers=AUTH
    )
    assert missing.status == 404
    ticket = await Ticket.get(number=number)
    assert ticket.status == "received"
    assert not await Message.filter(ticket_id=ticket.id, direction="out", kind=None).exists()
