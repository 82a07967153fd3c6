"""Photos and files on web messages: checked, stored once, served only to who may see them."""

from __future__ import annotations

import io
import os
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from intake_hub.app import SERVICES
from intake_hub.storage import agents
from intake_hub.storage.models import Attachment, Ticket
from intake_hub.tickets.attachments import sweep_orphans
from tests.web.conftest import AUTH, Client, settle

TEXT = "杯子收到就裂了，照片在附件里，订单号 4102938475610"
GPS_TAG = 0x8825


def photo(color: str = "red", gps: bool = True, size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG as a phone makes it, with the place it was taken in its EXIF."""
    exif = Image.Exif()
    if gps:
        exif[GPS_TAG] = {1: "N", 2: (31.0, 13.0, 48.0), 3: "E", 4: (121.0, 28.0, 12.0)}
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", exif=exif)
    return out.getvalue()


class Form:
    """A multipart body as a browser sends it: UTF-8 names as they are, not %-escaped."""

    def __init__(self, files: list[tuple[str, bytes]], **fields: str) -> None:
        values = {"name": "王女士", "contact": "wang@example.com", "text": TEXT} | fields
        self.boundary = "----intakehub" + secrets.token_hex(8)
        parts = [self._part(f'name="{k}"', v.encode()) for k, v in values.items()]
        parts += [
            self._part(f'name="attachments"; filename="{name}"', data, "image/jpeg")
            for name, data in files
        ]
        self.body = b"".join(parts) + f"--{self.boundary}--\r\n".encode()

    def _part(self, disposition: str, data: bytes, ctype: str | None = None) -> bytes:
        head = f"--{self.boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        return head.encode() + b"\r\n" + data + b"\r\n"

    @property
    def headers(self) -> dict[str, str]:
        """The Content-Type naming the boundary."""
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}"}


def form(files: list[tuple[str, bytes]], **fields: str) -> dict[str, Any]:
    """`data` and `headers` for a client post of a message with its files."""
    f = Form(files, **fields)
    return {"data": f.body, "headers": f.headers}


async def send(client: Client, files: list[tuple[str, bytes]], **fields: str) -> dict[str, Any]:
    """Post a message with files to the JSON API; the 202 body."""
    resp = await client.post("/api/v1/web/messages", **form(files, **fields))
    assert resp.status == 202, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def listed(client: Client, number: str) -> list[dict[str, Any]]:
    """The attachments of the ticket's first message, as the agent API lists them."""
    resp = await client.get(f"/api/v1/tickets/{number}", headers=AUTH)
    assert resp.status == 200
    first: list[dict[str, Any]] = (await resp.json())["messages"][0]["attachments"]
    return first


def stored_files(client: Client) -> list[Path]:
    """Every file in the embedded attachment store."""
    root = client.app[SERVICES].settings.home / "attachments"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


async def test_a_photo_reaches_the_agent_without_where_it_was_taken(client: Client) -> None:
    """The agent API lists the photo and serves it inline, its GPS metadata stripped."""
    sent = await send(client, [("裂了.jpg", photo())])
    await settle(client)
    [item] = await listed(client, sent["ticket"])
    assert item["name"] == "裂了.jpg"
    assert (item["content_type"], item["state"], item["kind"]) == ("image/jpeg", "stored", "file")
    resp = await client.get(item["url"], headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "image/jpeg"
    assert resp.headers["Content-Disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E8%A3%82%E4%BA%86.jpg" in resp.headers["Content-Disposition"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    served = await resp.read()
    assert len(served) == item["size"]
    image = Image.open(io.BytesIO(served))
    assert image.size == (640, 480)
    assert GPS_TAG not in image.getexif()


async def test_the_same_photo_twice_is_stored_once(client: Client) -> None:
    """A resent photo is one file in the store, shown on both messages."""
    same = photo("blue")
    first = await send(client, [("a.jpg", same)])
    second = await send(client, [("b.jpg", same)], contact="li@example.com")
    await settle(client)
    [a], [b] = await listed(client, first["ticket"]), await listed(client, second["ticket"])
    assert a["id"] != b["id"]
    assert len(stored_files(client)) == 1
    assert await Attachment.filter(state="stored").count() == 2


async def test_a_disguised_program_is_refused_and_nothing_is_kept(client: Client) -> None:
    """An executable named photo.jpg gets 422 naming the file; no ticket, no file."""
    program = b"MZ\x90\x00\x03" + bytes(2000)
    resp = await client.post(
        "/api/v1/web/messages", **form([("ok.jpg", photo()), ("photo.jpg", program)])
    )
    assert resp.status == 422
    body = await resp.json()
    assert [f["field"] for f in body["fields"]] == ["attachments.1"]
    assert body["fields"][0]["message"].startswith("type:")
    await settle(client)
    assert await Ticket.all().count() == 0
    assert stored_files(client) == []


async def test_too_many_files_are_refused_by_name(client: Client) -> None:
    """A sixth file on one message gets 422 naming it; the shipped limit is five."""
    files = [(f"{i}.jpg", photo(gps=False, size=(8 + i, 8))) for i in range(6)]
    resp = await client.post("/api/v1/web/messages", **form(files))
    assert resp.status == 422
    assert [f["field"] for f in (await resp.json())["fields"]] == ["attachments.5"]


async def test_a_file_of_no_known_type_is_only_a_download(client: Client) -> None:
    """Bytes of no type a browser shows safely come back as an attachment, never inline."""
    blob = bytes(range(256)) * 8
    sent = await send(client, [("<script>.html", blob)])
    await settle(client)
    [item] = await listed(client, sent["ticket"])
    assert item["content_type"] == "application/octet-stream"
    assert item["thumbnail_url"] is None
    resp = await client.get(item["url"], headers=AUTH)
    assert resp.content_type == "application/octet-stream"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    fallback = disposition.split('filename="')[1].split('"')[0]
    assert fallback == "_script_.bin"
    assert "<" not in disposition


async def test_the_thumbnail_is_made_once(client: Client) -> None:
    """The preview is small, and the second request serves the one already made."""
    sent = await send(client, [("big.jpg", photo(size=(1600, 1200)))])
    await settle(client)
    [item] = await listed(client, sent["ticket"])
    resp = await client.get(item["thumbnail_url"], headers=AUTH)
    assert resp.status == 200
    thumb = Image.open(io.BytesIO(await resp.read()))
    assert max(thumb.size) <= 320
    row = await Attachment.get(id=item["id"])
    assert row.thumb_digest is not None
    again = await client.get(item["thumbnail_url"], headers=AUTH)
    assert await again.read() == await resp.read()
    assert len(stored_files(client)) == 2


async def test_the_customer_opens_their_files_with_the_code_only(client: Client) -> None:
    """The ticket's code opens its files; no code, a wrong one or another ticket's does not."""
    mine = await send(client, [("mine.jpg", photo("green"))])
    other = await send(client, [], contact="zhao@example.com")
    await settle(client)
    [item] = await listed(client, mine["ticket"])
    path = f"/tickets/{mine['ticket']}/attachments/{item['id']}"
    status = await (await client.get(mine["status_url"].replace("http://testserver", ""))).text()
    assert item["id"] in status
    ok = await client.get(path, params={"code": mine["access_code"]})
    assert ok.status == 200 and ok.content_type == "image/jpeg"
    thumb = await client.get(f"{path}/thumbnail", params={"code": mine["access_code"]})
    assert thumb.status == 200
    assert (await client.get(path)).status == 404
    assert (await client.get(path, params={"code": "0" * 10})).status == 404
    # Another ticket's right code does not reach this ticket's file.
    crossed = f"/tickets/{other['ticket']}/attachments/{item['id']}"
    assert (await client.get(crossed, params={"code": other["access_code"]})).status == 404


async def test_agents_outside_the_ticket_scope_get_404(client: Client) -> None:
    """An agent of another team cannot fetch the file; without a token nobody can."""
    sent = await send(client, [("a.jpg", photo())])
    await settle(client)
    [item] = await listed(client, sent["ticket"])
    await Ticket.filter(number=sent["ticket"]).update(team="aftersales", assignee_id=None)
    outsider = await agents.add_agent("b1", "小赵", "agent", team="presales")
    insider = await agents.add_agent("a1", "小李", "agent", team="aftersales")
    assert (await client.get(item["url"])).status == 401
    denied = await client.get(item["url"], headers={"Authorization": f"Bearer {outsider}"})
    assert denied.status == 404
    allowed = await client.get(item["url"], headers={"Authorization": f"Bearer {insider}"})
    assert allowed.status == 200


async def test_a_reply_from_the_status_page_carries_its_photo(client: Client) -> None:
    """The customer's follow-up with a photo shows it on that message."""
    sent = await send(client, [])
    await settle(client)
    data = aiohttp.FormData()
    data.add_field("code", sent["access_code"])
    data.add_field("text", "补一张外包装的照片")
    data.add_field("attachments", photo("yellow"), filename="box.jpg")
    resp = await client.post(f"/api/v1/tickets/{sent['ticket']}/messages", data=data)
    assert resp.status == 202, await resp.text()
    await settle(client)
    detail = await (await client.get(f"/api/v1/tickets/{sent['ticket']}", headers=AUTH)).json()
    inbound = [m for m in detail["messages"] if m["direction"] == "in"]
    assert [len(m["attachments"]) for m in inbound] == [0, 1]
    assert inbound[1]["attachments"][0]["name"] == "box.jpg"


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_form_comes_back_with_the_text_when_a_file_is_refused(
    client: Client, lang: str
) -> None:
    """The no-JavaScript form keeps what was typed and says which file, in the page's language."""
    program = b"\x7fELF\x02\x01\x01" + bytes(500)
    post = Form([("photo.jpg", program)])
    resp = await client.post(
        f"/?lang={lang}",
        data=post.body,
        headers=post.headers | {"Origin": "http://testserver"},
        allow_redirects=False,
    )
    assert resp.status == 422
    page = await resp.text()
    assert TEXT in page
    assert ("第 1 个文件的类型不能上传" if lang == "zh" else "File 1 is of a type") in page
    assert await Ticket.all().count() == 0


async def test_the_sweep_removes_only_old_files_no_message_refers_to(client: Client) -> None:
    """Old orphans go; a ticket's file and a fresh upload still on its way in stay."""
    store = client.app[SERVICES].files
    sent = await send(client, [("kept.jpg", photo("navy"))])
    await settle(client)
    [item] = await listed(client, sent["ticket"])
    orphan = await store.put(b"a file whose message never committed")
    fresh = await store.put(b"a file whose message is still in the spool")
    old = time.time() - 4 * 86400
    for path in stored_files(client):
        if path.name != fresh:
            os.utime(path, (old, old))
    assert await sweep_orphans(store) == 1
    left = {p.name for p in stored_files(client)}
    assert orphan not in left and fresh in left and len(left) == 2
    resp = await client.get(item["url"], headers=AUTH)
    assert resp.status == 200


async def test_a_malformed_multipart_body_is_a_400(client: Client) -> None:
    """A part header the parser refuses (a NUL in it) gets 400, never a 500."""
    body = b'--b0\r\nContent-Disposition: form-data; name="t\x00"\r\n\r\nx\r\n--b0--\r\n'
    headers = {"Content-Type": "multipart/form-data; boundary=b0"}
    for path in ("/api/v1/web/messages", "/api/v1/tickets/1SSWH500000/messages"):
        resp = await client.post(path, data=body, headers=headers)
        assert resp.status == 400, path
        assert (await resp.json())["error"] == "invalid_body"
