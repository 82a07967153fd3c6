"""The trust model against a running `serve`: a stranger with a customer's contact gets
nothing of theirs; the holder of a ticket's code continues it from the status page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from intake_hub.ticketno import pretty
from tests.conftest import ADMIN_TOKEN
from tests.served.conftest import Served, start_service

AGENT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One service process for the whole module: every test makes its own customers."""
    home: Path = tmp_path_factory.mktemp("trust") / "home"
    home.mkdir()
    s = start_service(home)
    yield s
    s.stop()


@pytest.fixture
async def http(service: Served) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session against the running service."""
    async with aiohttp.ClientSession(service.url) as session:
        yield session


async def _post(http: aiohttp.ClientSession, **body: str) -> dict[str, Any]:
    async with http.post("/api/v1/web/messages", json=body) as resp:
        assert resp.status == 202, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


async def _status(http: aiohttp.ClientSession, number: str, code: str) -> dict[str, Any]:
    async with http.get(f"/api/v1/tickets/{number}/status", params={"code": code}) as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def _stored(
    http: aiohttp.ClientSession, number: str, code: str, inbound: int = 1
) -> dict[str, Any]:
    """The status once `inbound` customer messages are on the ticket."""
    for _ in range(200):
        status = await _status(http, number, code)
        if sum(m["direction"] == "in" for m in status["messages"]) >= inbound:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"ticket {number} never showed {inbound} inbound messages")


async def _agent_view(http: aiohttp.ClientSession, number: str) -> dict[str, Any]:
    async with http.get(f"/api/v1/tickets/{number}", headers=AGENT) as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


VICTIM_TEXT = "请把收货地址改成 上海市浦东新区张江路 88 号 1201 室"


@pytest.mark.parametrize(
    ("contact", "claimed", "subject"),
    [
        ("alice.wang@example.com", "ALICE.Wang@Example.COM", "改地址"),
        ("alice.li@example.com", "Alice.Li@example.com", None),
        ("138 0013 8000", "138-0013-8000", None),
    ],
    ids=["email-other-case-with-subject", "email-no-subject", "phone-other-format"],
)
async def test_stranger_with_the_contact_gets_nothing(
    http: aiohttp.ClientSession, contact: str, claimed: str, subject: str | None
) -> None:
    """A stranger posting the victim's contact starts a ticket of their own and sees only it."""
    extra = {"subject": subject} if subject else {}
    victim = await _post(http, name="王爱丽", contact=contact, text=VICTIM_TEXT, **extra)
    await _stored(http, victim["ticket"], victim["access_code"])

    stranger = await _post(
        http,
        name="Mallory",
        contact=claimed,
        text=f"关于工单 {pretty(victim['ticket'])} 的进度，我的工单在哪？",
        **extra,
    )
    mine = await _stored(http, stranger["ticket"], stranger["access_code"])
    assert stranger["ticket"] != victim["ticket"]
    assert mine["number"] == stranger["ticket"]
    assert [m["text"] for m in mine["messages"] if m["direction"] == "in"] == [
        f"关于工单 {pretty(victim['ticket'])} 的进度，我的工单在哪？"
    ]
    answers = repr([m for m in mine["messages"] if m["direction"] == "out"])
    for secret in (victim["ticket"], pretty(victim["ticket"]), victim["access_code"]):
        assert secret not in answers
    assert "张江路" not in repr(mine) and victim["access_code"] not in repr(mine)

    async with http.get(
        mine_url := f"/tickets/{stranger['ticket']}", params={"code": stranger["access_code"]}
    ) as resp:
        page = await resp.text()
    assert resp.status == 200, mine_url
    assert "张江路" not in page and victim["access_code"] not in page

    theirs = await _agent_view(http, victim["ticket"])
    assert theirs["customer"]["name"] == "王爱丽"
    assert [m["text"] for m in theirs["messages"] if m["direction"] == "in"] == [VICTIM_TEXT]
    other = await _agent_view(http, stranger["ticket"])
    assert other["customer"]["id"] != theirs["customer"]["id"]
    assert (other["customer"]["name"], other["customer"]["verified"]) == ("Mallory", False)


async def test_status_page_reply_joins_and_reopens_the_ticket(
    http: aiohttp.ClientSession,
) -> None:
    """The reply box posts onto the ticket its code opens, reopening it once resolved."""
    first = await _post(http, name="陈先生", contact="chen@example.com", text="电饭煲坏了")
    number, code = first["ticket"], first["access_code"]
    await _stored(http, number, code)
    async with http.post(
        f"/api/v1/tickets/{number}/status", json={"status": "resolved"}, headers=AGENT
    ) as resp:
        assert resp.status == 200

    async with http.post(
        f"/tickets/{number}/replies?lang=en",
        data={"code": code.lower(), "text": "还是不能用"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == f"/tickets/{number}?code={code}&lang=en&sent=1"
    status = await _stored(http, number, code, inbound=2)
    for _ in range(100):
        # On SQLite a read shares the writer's connection and may see its rows mid-commit.
        if status["status"] != "resolved":
            break
        await asyncio.sleep(0.02)
        status = await _status(http, number, code)
    assert status["status"] == "received"
    assert [m["text"] for m in status["messages"] if m["direction"] == "in"] == [
        "电饭煲坏了",
        "还是不能用",
    ]
    # Writing on one's own ticket is not acknowledged with the number a second time.
    assert [m["kind"] for m in status["messages"] if m["direction"] == "out"] == ["ack"]
    async with http.get(f"/tickets/{number}", params={"code": code, "sent": "1"}) as resp:
        page = await resp.text()
    assert 'id="sent"' in page and "还是不能用" in page


async def test_reply_with_a_wrong_code_is_refused_without_a_hint(
    http: aiohttp.ClientSession,
) -> None:
    """A wrong code answers exactly as an unknown ticket does, and stores nothing."""
    first = await _post(http, name="赵女士", contact="zhao@example.com", text="发票抬头错了")
    number, code = first["ticket"], first["access_code"]
    await _stored(http, number, code)
    wrong = "0000" + code[4:] if not code.startswith("0000") else "1111" + code[4:]
    async with http.post(f"/tickets/{number}/replies", data={"code": wrong, "text": "x"}) as r:
        wrong_page = (r.status, await r.text())
    async with http.post("/tickets/0K3M7Q2X9HT/replies", data={"code": code, "text": "x"}) as r:
        unknown_page = (r.status, await r.text())
    assert wrong_page == unknown_page and wrong_page[0] == 404

    async with http.post(
        f"/api/v1/tickets/{number}/messages", json={"code": wrong, "text": "x"}
    ) as r:
        wrong_api = (r.status, await r.json())
    async with http.post(
        "/api/v1/tickets/0K3M7Q2X9HT/messages", json={"code": code, "text": "x"}
    ) as r:
        unknown_api = (r.status, await r.json())
    assert wrong_api == unknown_api and wrong_api[0] == 404
    await asyncio.sleep(0.3)
    status = await _status(http, number, code)
    assert [m["text"] for m in status["messages"] if m["direction"] == "in"] == ["发票抬头错了"]


async def test_json_reply_and_quoted_code_join_the_ticket(http: aiohttp.ClientSession) -> None:
    """The JSON twin and a new form message quoting number and code both continue the ticket."""
    first = await _post(http, name="孙先生", contact="sun@example.com", text="快递三天没动")
    number, code = first["ticket"], first["access_code"]
    await _stored(http, number, code)
    async with http.post(
        f"/api/v1/tickets/{number}/messages", json={"code": code, "text": "单号 SF1234567890123"}
    ) as r:
        assert r.status == 202
        assert (await r.json())["ticket"] == number
    quoted = await _post(
        http,
        name="孙先生",
        contact="someone-else@example.com",
        text=f"工单 {pretty(number)} 查询码 {code.lower()}：还没到",
    )
    status = await _stored(http, number, code, inbound=3)
    assert len(status["messages"]) >= 3
    # The new number given for the quoting message opens the ticket it joined.
    joined = await _status(http, quoted["ticket"], quoted["access_code"])
    assert joined["number"] == number


async def test_reply_box_validates_and_escapes(http: aiohttp.ClientSession) -> None:
    """An empty or oversized reply re-shows the page with the field error; markup is text."""
    first = await _post(http, name="周女士", contact="zhou@example.com", text="尺码不对")
    number, code = first["ticket"], first["access_code"]
    await _stored(http, number, code)
    async with http.post(f"/tickets/{number}/replies", data={"code": code, "text": "  "}) as r:
        assert r.status == 422
        assert 'data-field="text"' in await r.text()
    async with http.post(
        f"/tickets/{number}/replies", data={"code": code, "text": "长" * 10_001}
    ) as r:
        assert r.status == 422
    evil = "<script>alert(1)</script>"
    async with http.post(
        f"/tickets/{number}/replies", data={"code": code, "text": evil}, allow_redirects=False
    ) as r:
        assert r.status == 303
    await _stored(http, number, code, inbound=2)
    async with http.get(f"/tickets/{number}", params={"code": code}) as r:
        page = await r.text()
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert re.search(r'<form[^>]+id="reply-form"', page)


async def test_reply_box_double_submit_adds_the_message_once(http: aiohttp.ClientSession) -> None:
    """The same reply form posted twice (double click, resubmit) joins the ticket once."""
    first = await _post(http, name="吴先生", contact="wu@example.com", text="洗衣机漏水")
    number, code = first["ticket"], first["access_code"]
    await _stored(http, number, code)
    async with http.get(f"/tickets/{number}", params={"code": code}) as resp:
        page = await resp.text()
    found = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert found is not None
    form = {"code": code, "text": "水从底部漏出来", "idempotency_key": found.group(1)}
    for _ in range(2):
        async with http.post(
            f"/tickets/{number}/replies", data=form, allow_redirects=False
        ) as resp:
            assert resp.status == 303
    headers = {"Idempotency-Key": "app-retry-1"}
    for _ in range(2):
        async with http.post(
            f"/api/v1/tickets/{number}/messages",
            json={"code": code, "text": "照片稍后发"},
            headers=headers,
        ) as resp:
            assert resp.status == 202
    status = await _stored(http, number, code, inbound=3)
    await asyncio.sleep(0.3)
    status = await _status(http, number, code)
    inbound = [m["text"] for m in status["messages"] if m["direction"] == "in"]
    assert inbound == ["洗衣机漏水", "水从底部漏出来", "照片稍后发"]
