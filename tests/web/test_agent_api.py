"""The agent read API: bearer tokens, filters and cursor paging."""

from __future__ import annotations

from intake_hub.storage import agents
from tests.web.conftest import AUTH, Client, post_message, settle


async def test_agent_api_needs_a_valid_token(client: Client) -> None:
    """No token or a wrong token is 401; an agent's own token works."""
    assert (await client.get("/api/v1/tickets")).status == 401
    bad = await client.get("/api/v1/tickets", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401 and "Bearer" in bad.headers["WWW-Authenticate"]
    token = await agents.add_agent("li", "小李", "agent", team="aftersales")
    ok = await client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200


async def test_list_filters_by_category_and_channel(client: Client) -> None:
    """Filtering by category returns only tickets of that category."""
    await post_message(client, contact="a@example.com", text="我要投诉，再不处理就打12315")
    await post_message(client, contact="b@example.com", text="尺码不对，想换大一码")
    await settle(client)
    resp = await client.get("/api/v1/tickets", params={"category": "complaint"}, headers=AUTH)
    items = (await resp.json())["items"]
    assert [t["category"] for t in items] == ["complaint"]
    assert items[0]["priority"] == "urgent"
    resp = await client.get("/api/v1/tickets", params={"channel": "email"}, headers=AUTH)
    assert (await resp.json())["items"] == []


async def test_cursor_paging_visits_every_ticket_once(client: Client) -> None:
    """Paging with limit=2 over five tickets returns all five, newest first, no repeats."""
    sent = [(await post_message(client, contact=f"c{i}@example.com"))["ticket"] for i in range(5)]
    await settle(client)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (await client.get("/api/v1/tickets", params=params, headers=AUTH)).json()
        seen += [t["number"] for t in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(sent) and len(seen) == 5


async def test_bad_query_values_are_422_naming_the_field(client: Client) -> None:
    """A limit out of range or a forged cursor is a 422, not a 500."""
    resp = await client.get("/api/v1/tickets", params={"limit": "0"}, headers=AUTH)
    assert resp.status == 422
    assert (await resp.json())["fields"][0]["field"] == "limit"
    resp = await client.get("/api/v1/tickets", params={"cursor": "garbage!"}, headers=AUTH)
    assert resp.status == 422


async def test_unknown_ticket_is_404(client: Client) -> None:
    """Asking for a ticket that does not exist is a 404."""
    resp = await client.get("/api/v1/tickets/0000-0000-00X", headers=AUTH)
    assert resp.status == 404
