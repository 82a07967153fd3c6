"""Customers' WeChat images and voice: answered at once, fetched afterwards, stored once."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.storage.models import Attachment, Ticket
from intake_hub.testing import FakeWeChatApi
from intake_hub.ticketno import pretty
from tests.connectors.wechat.conftest import (
    ACCOUNT,
    OPENID,
    Client,
    encrypt,
    open_reply,
    post,
    sending_connectors,
)
from tests.web.conftest import AUTH

GPS_TAG = 0x8825
MEDIA_ID = "media_img_123"
FAST = "media_poll_s: 0.05\nmedia_retry_s: [0.05]\n"

Start = Callable[[str], Awaitable[Client]]


def photo() -> bytes:
    """A JPEG as a phone makes it, with where it was taken in its EXIF."""
    exif = Image.Exif()
    exif[GPS_TAG] = {1: "N", 2: (31.0, 13.0, 48.0), 3: "E", 4: (121.0, 28.0, 12.0)}
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, "JPEG", exif=exif)
    return out.getvalue()


def media_push(msg_id: int, kind: str = "image", media_id: str = MEDIA_ID, extra: str = "") -> str:
    """An image (or voice) message as WeChat pushes it: only the media id, no file."""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
        f"<MediaId><![CDATA[{media_id}]]></MediaId>{extra}<MsgId>{msg_id}</MsgId></xml>"
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database for the test (the files share the app's data dir)."""
    return f"sqlite://{tmp_path / 'data' / 'hub.sqlite3'}"


@pytest.fixture
def start(
    settings: Settings,
    tmp_path: Path,
    fake: FakeWeChatApi,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Start:
    """Starts the whole service on a database, its account fetching from the fake API fast."""
    connectors = sending_connectors(tmp_path, fake, extra=FAST)

    async def make(url: str) -> Client:
        app = create_app(replace(settings, database_url=url, connectors_dir=connectors))
        return await aiohttp_client(app)

    return make


async def push(client: Client, xml: str) -> dict[str, Any]:
    """Push a message the way WeChat does; the decrypted passive reply."""
    resp = await post(client, "/hooks/wechat", *encrypt(xml))
    assert resp.status == 200
    return open_reply(await resp.text())


async def done() -> list[Attachment]:
    """Every attachment row, once none is pending any more (a few seconds at most)."""
    for _ in range(300):
        found = await Attachment.all()
        if found and all(a.state != "pending" for a in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"still pending: {[(a.state, a.error) for a in found]}")


async def ticket_json(client: Client) -> dict[str, Any]:
    """The one WeChat ticket as the agent API shows it."""
    ticket = await Ticket.get(channel="wechat")
    resp = await client.get(f"/api/v1/tickets/{ticket.number}", headers=AUTH)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def stored_image(client: Client, fake: FakeWeChatApi) -> None:
    """Push a photo, and see it answered first and then stored, cleaned, and downloadable."""
    fake.add_media(MEDIA_ID, photo(), "image/jpeg")
    # The download takes a moment, so a fetch inside the push would show here.
    fake.media_delay = 0.3
    reply = await push(client, media_push(24530287612001235))
    assert fake.media_served == []

    [row] = await done()
    assert pretty((await Ticket.get(channel="wechat")).number) in reply["Content"]
    assert (row.state, row.kind, row.content_type) == ("stored", "image", "image/jpeg")
    [message] = (await ticket_json(client))["messages"][:1]
    [listed] = message["attachments"]
    assert listed["state"] == "stored" and listed["url"]
    resp = await client.get(urlsplit(listed["url"]).path, headers=AUTH)
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(await resp.read()))
    assert image.size == (64, 48) and GPS_TAG not in image.getexif()
    assert fake.media_served == [MEDIA_ID]


async def test_image_is_answered_at_once_and_fetched_afterwards(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """An image push: passive reply first, then the file is stored without its EXIF."""
    await stored_image(await start(sqlite_url), fake)


@pytest.mark.postgres
async def test_image_is_fetched_on_postgres(start: Start, pg_url: str, fake: FakeWeChatApi) -> None:
    """The same on PostgreSQL: lease, fetch and store."""
    await stored_image(await start(pg_url), fake)


async def test_voice_keeps_the_recognition_and_the_file(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """A voice message: WeChat's recognition is the text, the AMR file is kept too."""
    client = await start(sqlite_url)
    amr = b"#!AMR\n" + bytes([0x3C]) + bytes(31) * 20
    fake.add_media("media_voice_1", amr, "audio/amr")
    extra = "<Format><![CDATA[amr]]></Format><Recognition><![CDATA[我要退货]]></Recognition>"
    await push(client, media_push(24530287612001236, "voice", "media_voice_1", extra))
    [row] = await done()
    assert (row.state, row.content_type, row.name) == ("stored", "audio/amr", "voice.amr")
    assert row.size == len(amr)
    assert (await ticket_json(client))["messages"][0]["text"] == "我要退货"


async def test_expired_media_fails_and_the_ticket_stays(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """WeChat answers 40007 (gone after 3 days): failed as expired, the ticket is kept."""
    client = await start(sqlite_url)
    fake.add_media(MEDIA_ID, photo(), "image/jpeg")
    fake.expire_media(MEDIA_ID)
    await push(client, media_push(24530287612001237))
    [row] = await done()
    assert (row.state, row.error, row.attempts) == ("failed", "expired", 1)
    [listed] = (await ticket_json(client))["messages"][0]["attachments"]
    assert listed["state"] == "failed" and listed["url"] is None


async def test_a_slow_api_does_not_delay_the_passive_reply(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """A download slower than the reply budget is in flight: the next push still gets its ack."""
    client = await start(sqlite_url)
    fake.add_media(MEDIA_ID, photo(), "image/jpeg")
    fake.media_delay = 3.5
    await push(client, media_push(24530287612001238))
    for _ in range(200):
        if fake.media_calls:
            break
        await asyncio.sleep(0.05)
    assert fake.media_calls == [MEDIA_ID] and fake.media_served == []
    other = await push(client, media_push(24530287612001239, media_id="media_img_other"))
    fake.media_delay = 0.0
    rows = await done()
    assert sorted(r.state for r in rows) == ["failed", "stored"]
    # Out of budget the reply would be an empty `success`, not the ack with a number.
    assert other["MsgType"] == "text" and "工单号" in other["Content"]


async def test_two_server_errors_then_stored_once(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """The API answers 500 twice, then the file: retried with backoff, stored once."""
    client = await start(sqlite_url)
    fake.add_media(MEDIA_ID, photo(), "image/jpeg")
    fake.fail_media(2)
    await push(client, media_push(24530287612001240))
    [row] = await done()
    assert (row.state, row.attempts, row.error) == ("stored", 3, None)
    assert fake.media_calls == [MEDIA_ID] * 3 and fake.media_served == [MEDIA_ID]


async def test_a_restart_mid_fetch_stores_the_file_once(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """The service stops while a download is leased and in flight; the next one stores it."""
    first = await start(sqlite_url)
    fake.add_media(MEDIA_ID, photo(), "image/jpeg")
    fake.media_delay = 1.0
    await push(first, media_push(24530287612001241))
    for _ in range(200):
        if fake.media_calls:
            break
        await asyncio.sleep(0.05)
    await first.close()

    fake.media_delay = 0.0
    second = await start(sqlite_url)
    [row] = await done()
    assert (row.state, row.attempts) == ("stored", 2)
    [listed] = (await ticket_json(second))["messages"][0]["attachments"]
    assert listed["state"] == "stored"
    assert await Ticket.filter(channel="wechat").count() == 1


async def test_wechat_retry_of_a_media_push_is_one_ticket_one_file(
    start: Start, sqlite_url: str, fake: FakeWeChatApi
) -> None:
    """WeChat re-sends the image push (same MsgId): one ticket, one attachment, one download."""
    client = await start(sqlite_url)
    fake.add_media(MEDIA_ID, photo(), "image/jpeg")
    first = await push(client, media_push(24530287612001242))
    again = await push(client, media_push(24530287612001242))
    assert again["Content"] == first["Content"]
    [row] = await done()
    assert row.state == "stored"
    assert await Ticket.filter(channel="wechat").count() == 1
    assert fake.media_served == [MEDIA_ID]
