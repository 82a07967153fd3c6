"""Supervisors reassign tickets by hand over the API; agents may not."""

from __future__ import annotations

from intake_hub.storage import agents
from intake_hub.storage.models import Event, Ticket
from tests.web.conftest import AUTH, Client, post_message, settle


async def _ticket(client: Client) -> str:
    body = await post_message(client)
    await settle(client)
    number: str = body["ticket"]
    return number


async def test_supervisor_reassigns_with_reason(client: Client) -> None:
    """A supervisor moves a ticket to another agent; the reason lands in the audit trail."""
    number = await _ticket(client)
    boss = await agents.add_agent("boss", "主管", "supervisor", team="aftersales")
    await agents.add_agent("wang", "王经理", "agent", team="complaints")
    resp = await client.post(
        f"/api/v1/tickets/{number}/assign",
        json={"assignee": "wang", "reason": "客户要求投诉专员处理"},
        headers={"Authorization": f"Bearer {boss}"},
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert (data["assignee"], data["team"]) == ("wang", "complaints")
    ticket = await Ticket.get(number=data["number"])
    assert ticket.assignee_id == "wang"  # type: ignore[attr-defined]
    event = await Event.get(ticket_id=ticket.id, kind="reassigned")
    assert (event.actor, event.data["reason"]) == ("boss", "客户要求投诉专员处理")
    detail = await client.get(f"/api/v1/tickets/{number}", headers=AUTH)
    assert (await detail.json())["assignee"] == "wang"


async def test_agent_gets_403(client: Client) -> None:
    """An agent's token is refused with 403 and nothing changes."""
    number = await _ticket(client)
    token = await agents.add_agent("li", "小李", "agent", team="aftersales")
    resp = await client.post(
        f"/api/v1/tickets/{number}/assign",
        json={"assignee": "li", "reason": "我来"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "forbidden"
    assert not await Event.filter(kind="reassigned").exists()


async def test_bad_requests(client: Client) -> None:
    """No token 401, unknown ticket 404, unknown agent or missing reason 422."""
    number = await _ticket(client)
    await agents.add_agent("li", "小李", "agent", team="aftersales")
    url = f"/api/v1/tickets/{number}/assign"
    assert (await client.post(url, json={"assignee": "li", "reason": "x"})).status == 401
    missing = await client.post(
        "/api/v1/tickets/0000-0000-00A/assign", json={"assignee": "li", "reason": "x"}, headers=AUTH
    )
    assert missing.status == 404
    ghost = await client.post(url, json={"assignee": "ghost", "reason": "x"}, headers=AUTH)
    assert ghost.status == 422 and (await ghost.json())["error"] == "unknown_assignee"
    no_reason = await client.post(url, json={"assignee": "li"}, headers=AUTH)
    assert no_reason.status == 422
    blank = await client.post(url, json={"assignee": "li", "reason": "   "}, headers=AUTH)
    assert blank.status == 422


async def test_openapi_documents_assign(client: Client) -> None:
    """The OpenAPI document lists the assign operation with its body and answers."""
    doc = await (await client.get("/api/openapi.json")).json()
    op = doc["paths"]["/api/v1/tickets/{number}/assign"]["post"]
    assert op["operationId"] == "assignTicket"
    assert {"200", "403", "404", "422"} <= set(op["responses"])
    assert "AssignIn" in doc["components"]["schemas"]
