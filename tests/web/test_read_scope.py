"""Who reads what: each role against list, detail, reply and status, on the real app.

Tickets: `a` (team A, unassigned), `b` (team B, unassigned), `none` (no team) and `b_a1`
(team B, assigned to agent a1 of team A). A ticket a caller may not read answers 404
exactly like an unknown number; one they may read but not work answers 403.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse

from intake_hub.storage import agents
from intake_hub.storage.models import Agent, Event, Message, Ticket, TicketAlias
from tests.web.conftest import Client, post_message, settle

# The shipped routing sends this size-exchange message to the after-sales team.
TEAM_A, TEAM_B = "aftersales", "presales"
TICKETS = ("a", "b", "none", "b_a1")
UNKNOWN = "0000-0000-00A"
ALIAS = "1000-0000-00B"  # a follow-up number, joined to ticket `b` by the test

# role -> ticket -> (listed and readable, reply answer, status answer)
EXPECTED: dict[str, dict[str, tuple[bool, int, int]]] = {
    "agent_a": {
        "a": (True, 201, 200),
        "b": (False, 404, 404),
        "none": (False, 404, 404),
        "b_a1": (True, 201, 200),
    },
    "agent_b": {
        "a": (False, 404, 404),
        "b": (True, 201, 200),
        "none": (False, 404, 404),
        "b_a1": (True, 403, 403),
    },
    "supervisor_a": {
        "a": (True, 201, 200),
        "b": (False, 404, 404),
        "none": (True, 201, 200),
        "b_a1": (False, 404, 404),
    },
    "admin": {name: (True, 201, 200) for name in TICKETS},
}


async def _world(client: Client) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The four tickets by name, and a bearer header per role."""
    numbers: dict[str, str] = {}
    for name in TICKETS:
        numbers[name] = (await post_message(client, contact=f"{name}@example.com"))["ticket"]
    await settle(client)
    # Agents are made after routing, so the router assigns none of the tickets.
    tokens = {
        "agent_a": await agents.add_agent("a1", "小李", "agent", team=TEAM_A),
        "agent_b": await agents.add_agent("b1", "小赵", "agent", team=TEAM_B),
        "supervisor_a": await agents.add_agent("boss", "主管", "supervisor", team=TEAM_A),
        "admin": await agents.add_agent("root", "管理员", "admin"),
    }
    await Ticket.filter(number=numbers["b"]).update(team=TEAM_B)
    await Ticket.filter(number=numbers["none"]).update(team=None)
    await Ticket.filter(number=numbers["b_a1"]).update(team=TEAM_B, assignee_id="a1")
    assert await Ticket.filter(number=numbers["a"], team=TEAM_A, assignee_id=None).exists()
    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
    return numbers, headers


async def _answer(resp: ClientResponse) -> tuple[int, Any]:
    return resp.status, await resp.json()


@pytest.mark.parametrize("role", list(EXPECTED))
async def test_each_role_reads_and_works_only_its_scope(client: Client, role: str) -> None:
    """List, detail, reply and status per role; out of scope is the unknown number's 404."""
    numbers, headers = await _world(client)
    auth, expected = headers[role], EXPECTED[role]
    readable = {numbers[name] for name, (seen, _, _) in expected.items() if seen}

    page = await (await client.get("/api/v1/tickets", headers=auth)).json()
    assert {item["number"] for item in page["items"]} == readable
    assert page["next"] is None

    missing = await _answer(await client.get(f"/api/v1/tickets/{UNKNOWN}", headers=auth))
    assert missing[0] == 404
    for name, number in numbers.items():
        status, body = await _answer(await client.get(f"/api/v1/tickets/{number}", headers=auth))
        if number in readable:
            assert (status, body["number"], "customer" in body) == (200, number, True)
        else:
            assert (status, body) == missing, name

    for name, number in numbers.items():
        _, replied, moved = expected[name]
        before = await Ticket.get(number=number)
        url = f"/api/v1/tickets/{number}"
        resp = await client.post(f"{url}/replies", json={"text": "您好，已处理。"}, headers=auth)
        assert resp.status == replied, (name, await resp.text())
        resp = await client.post(f"{url}/status", json={"status": "resolved"}, headers=auth)
        assert resp.status == moved, (name, await resp.text())
        if replied == 404:
            # Word for word the unknown number's answer: nothing tells the ticket exists.
            assert await resp.json() == missing[1]
        elif replied == 403:
            assert (await resp.json())["error"] == "forbidden"
        after = await Ticket.get(number=number)
        if replied == 201:
            assert after.status == "resolved", name
            continue
        assert (after.status, after.assignee_id) == (  # type: ignore[attr-defined]
            before.status,
            before.assignee_id,  # type: ignore[attr-defined]
        ), name
        assert not await Message.filter(ticket_id=after.id, direction="out", kind=None).exists()
        worked = Event.filter(ticket_id=after.id, kind__in=("replied", "status_changed"))
        assert not await worked.exists(), name


async def test_list_filters_apply_inside_the_scope(client: Client) -> None:
    """A filter never widens the scope: a1's team-B ticket is listed to a1, not to A's lead."""
    numbers, headers = await _world(client)
    params = {"assignee": "a1"}
    mine = await client.get("/api/v1/tickets", params=params, headers=headers["agent_a"])
    assert [item["number"] for item in (await mine.json())["items"]] == [numbers["b_a1"]]
    boss = await client.get("/api/v1/tickets", params=params, headers=headers["supervisor_a"])
    assert (await boss.json())["items"] == []


async def test_an_agent_without_a_team_reads_only_what_is_assigned_to_them(client: Client) -> None:
    """No team: only the tickets assigned to them, nothing of the unassigned queue."""
    numbers, _ = await _world(client)
    token = await agents.add_agent("solo", "小孙", "agent")
    await Ticket.filter(number=numbers["none"]).update(assignee_id="solo")
    auth = {"Authorization": f"Bearer {token}"}
    page = await (await client.get("/api/v1/tickets", headers=auth)).json()
    assert [item["number"] for item in page["items"]] == [numbers["none"]]
    assert (await client.get(f"/api/v1/tickets/{numbers['a']}", headers=auth)).status == 404


async def test_a_team_change_applies_at_once(client: Client) -> None:
    """The scope follows the agent's team as stored now, not as it was at sign-in."""
    numbers, headers = await _world(client)
    url = f"/api/v1/tickets/{numbers['b']}"
    assert (await client.get(url, headers=headers["agent_a"])).status == 404
    await Agent.filter(id="a1").update(team_id=TEAM_B)
    assert (await client.get(url, headers=headers["agent_a"])).status == 200


async def test_a_follow_up_number_reads_within_the_same_scope(client: Client) -> None:
    """A follow-up's number opens its ticket only for those who may read that ticket."""
    numbers, headers = await _world(client)
    ticket = await Ticket.get(number=numbers["b"])
    await TicketAlias.create(number=ALIAS.replace("-", ""), ticket_id=ticket.id)
    url = f"/api/v1/tickets/{ALIAS}"
    seen = await client.get(url, headers=headers["agent_b"])
    assert (seen.status, (await seen.json())["number"]) == (200, numbers["b"])
    outsider = headers["agent_a"]
    missing = await _answer(await client.get(f"/api/v1/tickets/{UNKNOWN}", headers=outsider))
    assert await _answer(await client.get(url, headers=outsider)) == missing
    reply = await client.post(f"{url}/replies", json={"text": "我来"}, headers=outsider)
    assert reply.status == 404
