"""The web channel end to end: POST, pipeline, stored ticket, status page and agent view."""

from __future__ import annotations

import re

from intake_hub import ticketno
from intake_hub.app import SERVICES
from intake_hub.storage import agents
from intake_hub.storage.models import Message
from tests.web.conftest import AUTH, Client, post_message, settle


async def test_message_becomes_a_classified_routed_ticket_with_an_ack(client: Client) -> None:
    """The size-exchange example is stored as return_exchange for after-sales, acked."""
    await agents.add_agent("li", "小李", "agent", team="aftersales", skills=("returns",))
    await agents.add_agent("zhao", "小赵", "agent", team="aftersales", skills=("returns",))
    accepted = await post_message(client)
    number, code = accepted["ticket"], accepted["access_code"]
    assert ticketno.normalize(number) == number
    assert accepted["status_url"] == f"http://testserver/tickets/{number}?code={code}"
    await settle(client)

    resp = await client.get(f"/api/v1/tickets/{number}", headers=AUTH)
    assert resp.status == 200
    ticket = await resp.json()
    assert ticket["number"] == number
    assert ticket["category"] == "return_exchange"
    assert ticket["team"] == "aftersales"
    assert ticket["assignee"] in ("li", "zhao")
    assert ticket["channel"] == "web"
    assert ticket["customer"]["email"] == "wang@example.com"
    inbound, ack = ticket["messages"]
    assert inbound["direction"] == "in" and "尺码不对" in inbound["text"]
    assert ack["direction"] == "out" and ack["kind"] == "ack"
    assert ticketno.pretty(number) in ack["text"] or number in ack["text"]


async def test_status_page_shows_status_and_conversation(client: Client) -> None:
    """The customer's status link shows the ticket number, status and both messages."""
    accepted = await post_message(client, text="where is my parcel? no update for 5 days")
    await settle(client)
    resp = await client.get(
        f"/tickets/{accepted['ticket']}?code={accepted['access_code']}",
        headers={"Accept-Language": "en-US,en;q=0.9"},
    )
    assert resp.status == 200
    html = await resp.text()
    assert ticketno.pretty(accepted["ticket"]) in html
    assert "where is my parcel?" in html
    assert ('data-status="' in html and "Received" in html) or "In progress" in html

    resp = await client.get(
        f"/api/v1/tickets/{accepted['ticket']}/status", params={"code": accepted["access_code"]}
    )
    status = await resp.json()
    assert status["number"] == accepted["ticket"]
    assert [m["direction"] for m in status["messages"]] == ["in", "out"]


async def test_wrong_or_missing_code_is_404_without_a_hint(client: Client) -> None:
    """A wrong code for a real ticket answers exactly like a ticket that does not exist."""
    accepted = await post_message(client)
    await settle(client)
    real = await client.get(f"/api/v1/tickets/{accepted['ticket']}/status?code=WRONGCODE")
    missing = await client.get("/api/v1/tickets/0000-0000-00X/status?code=WRONGCODE")
    nocode = await client.get(f"/api/v1/tickets/{accepted['ticket']}/status")
    assert real.status == missing.status == nocode.status == 404
    assert await real.json() == await missing.json() == await nocode.json()
    page = await client.get(f"/tickets/{accepted['ticket']}?code=nope")
    assert page.status == 404


async def test_customer_text_is_escaped_on_the_status_page(client: Client) -> None:
    """Markup a customer writes is shown as text, never run."""
    accepted = await post_message(
        client, text="<script>alert('x')</script> 发票开错了", subject="<b>bold</b>"
    )
    await settle(client)
    html = await (
        await client.get(f"/tickets/{accepted['ticket']}?code={accepted['access_code']}")
    ).text()
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


async def test_status_link_works_before_the_ticket_is_stored(client: Client) -> None:
    """Opened at once, a fresh ticket shows as received rather than not found."""
    accepted = await post_message(client)
    resp = await client.get(
        f"/api/v1/tickets/{accepted['ticket']}/status", params={"code": accepted["access_code"]}
    )
    assert resp.status == 200
    assert (await resp.json())["status"] == "received"
    await settle(client)


async def test_same_contact_again_starts_a_ticket_of_its_own(client: Client) -> None:
    """A second form message from the same contact is a new ticket: a contact is only a claim."""
    first = await post_message(client)
    await settle(client)
    second = await post_message(client, text="还有，能不能顺便开个发票？")
    await settle(client)
    resp = await client.get(f"/api/v1/tickets/{first['ticket']}", headers=AUTH)
    texts = [m["text"] for m in (await resp.json())["messages"] if m["direction"] == "in"]
    assert texts == ["尺码不对，想换大一码，订单号 4102938475610"]
    via_second = await client.get(
        f"/api/v1/tickets/{second['ticket']}/status", params={"code": second["access_code"]}
    )
    assert (await via_second.json())["number"] == second["ticket"]


async def test_follow_up_quoting_number_and_code_joins_the_ticket(client: Client) -> None:
    """A message quoting the ticket's number and code lands on it; both links show it."""
    first = await post_message(client)
    await settle(client)
    quoted = f"工单 {first['ticket']}，查询码 {first['access_code']}：还有，能不能开个发票？"
    second = await post_message(client, contact="13800138000", text=quoted)
    await settle(client)
    resp = await client.get(f"/api/v1/tickets/{first['ticket']}", headers=AUTH)
    texts = [m["text"] for m in (await resp.json())["messages"] if m["direction"] == "in"]
    assert texts == ["尺码不对，想换大一码，订单号 4102938475610", quoted]
    via_second = await client.get(
        f"/api/v1/tickets/{second['ticket']}/status", params={"code": second["access_code"]}
    )
    assert (await via_second.json())["number"] == first["ticket"]


async def test_quoting_someone_elses_ticket_does_not_join_it(client: Client) -> None:
    """Quoting another customer's ticket number opens a ticket of one's own."""
    victim = await post_message(client)
    await settle(client)
    intruder = await post_message(
        client, contact="13800138000", text=f"工单 {victim['ticket']} 我要退款"
    )
    await settle(client)
    resp = await client.get(f"/api/v1/tickets/{victim['ticket']}", headers=AUTH)
    assert len([m for m in (await resp.json())["messages"] if m["direction"] == "in"]) == 1
    mine = await client.get(f"/api/v1/tickets/{intruder['ticket']}", headers=AUTH)
    assert (await mine.json())["number"] == intruder["ticket"]


async def test_form_page_speaks_the_browsers_language(client: Client) -> None:
    """The form is Chinese by default and English for an English browser."""
    zh = await (await client.get("/")).text()
    en = await (await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"})).text()
    assert "联系客服" in zh and 'name="text"' in zh
    assert "Contact customer service" in en and 'name="contact"' in en
    assert 'name="viewport"' in zh


async def test_form_post_without_javascript_redirects_to_the_status_page(client: Client) -> None:
    """A plain HTML form post answers 303 to the new ticket's status page."""
    resp = await client.post(
        "/",
        data={
            "name": "Tom",
            "contact": "tom@example.com",
            "text": "Refund please",
            "subject": "",
            "order_id": "",
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    location = resp.headers["Location"]
    assert re.fullmatch(r"/tickets/[0-9A-Z]{11}\?code=[0-9A-Z]{8}", location)
    await settle(client)
    page = await client.get(location)
    assert page.status == 200 and "Refund please" in await page.text()


async def test_form_post_with_a_blank_field_shows_the_form_again(client: Client) -> None:
    """A blank message re-renders the form with the error and the values kept."""
    resp = await client.post("/", data={"name": "Tom", "contact": "tom@example.com", "text": " "})
    assert resp.status == 422
    html = await resp.text()
    assert 'data-field="text"' in html and 'value="tom@example.com"' in html


async def test_reply_before_the_ticket_is_stored_is_refused_not_lost(client: Client) -> None:
    """A valid code for a ticket still on its way in: 409, and the page hides the reply box."""
    number = "0K3M7Q2X9HT"
    code = client.app[SERVICES].links.code(number)
    resp = await client.post(
        f"/api/v1/tickets/{number}/messages", json={"code": code, "text": "还在吗？"}
    )
    assert resp.status == 409
    assert (await resp.json())["error"] == "not_yet_stored"
    page = await (await client.get(f"/tickets/{number}", params={"code": code})).text()
    assert 'id="processing"' in page and 'id="reply-form"' not in page
    form = await client.post(f"/tickets/{number}/replies", data={"code": code, "text": "在吗"})
    assert form.status == 409
    assert "工单正在创建中" in await form.text()
    await settle(client)
    assert await Message.all().count() == 0
