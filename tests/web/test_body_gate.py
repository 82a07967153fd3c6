"""Posts judged before their bodies: a stranger cannot make the service read large uploads."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import ClientResponse

from intake_hub.app import create_app
from intake_hub.config import Settings
from tests.web.conftest import Client, post_message, settle

MB = 1024 * 1024
# Small limits, so a body over them is a few MB: the message limit's body is 1 + 1 MB.
YAML = """type: web
name: web
limits:
  messages_per_ip: {count: 2, per: hour}
  wrong_codes_per_ticket: {count: 2, per: hour}
attachments:
  max_file_bytes: 1048576
  max_message_bytes: 1048576
"""

Make = Callable[[], Awaitable[Client]]


@pytest.fixture
def small(
    settings: Settings, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Make:
    """The service with small web limits and upload limits, rate limits on."""

    async def make() -> Client:
        connectors = tmp_path / "connectors"
        connectors.mkdir(exist_ok=True)
        (connectors / "web.yaml").write_text(YAML)
        app = create_app(replace(settings, connectors_dir=connectors, rate_limits=True))
        return await aiohttp_client(app)

    return make


class SlowUpload:
    """A multipart post whose file is held back until the answer is in (or 5 s passed).

    The fields and the file's first `first` bytes go at once (aiohttp's multipart reader
    looks a chunk or two ahead for the next boundary); the rest only once the test saw the
    answer. A service that read the whole body before answering would wait for it.
    """

    def __init__(self, fields: dict[str, str], file_bytes: int, first: int = 256 * 1024) -> None:
        self.boundary = "----gate" + secrets.token_hex(8)
        b = self.boundary
        head = b"".join(
            f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{b}\r\nContent-Disposition: form-data; name="attachments"; filename="big.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        self.head = head + b"\xff" * first
        self.rest = b"\xff" * (file_bytes - first) + f"\r\n--{b}--\r\n".encode()
        self.answered = asyncio.Event()
        self.sent = 0
        self.sent_when_answered = -1

    @property
    def size(self) -> int:
        """The whole body's length."""
        return len(self.head) + len(self.rest)

    def headers(self, announced: bool = False) -> dict[str, str]:
        """Its Content-Type, and its Content-Length when `announced` (else it goes chunked)."""
        headers = {"Content-Type": f"multipart/form-data; boundary={self.boundary}"}
        return headers | ({"Content-Length": str(self.size)} if announced else {})

    async def chunks(self) -> AsyncIterator[bytes]:
        """The head, then after the answer (at most 5 s) the rest in 256 KB pieces."""
        yield self.head
        self.sent = len(self.head)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.answered.wait(), 5)
        for start in range(0, len(self.rest), 256 * 1024):
            piece = self.rest[start : start + 256 * 1024]
            yield piece
            self.sent += len(piece)

    async def post(self, client: Client, path: str, announced: bool = False) -> ClientResponse:
        """Send it to `path`; the answer, noting how much had been sent when it came."""
        resp = await client.post(
            path, data=self.chunks(), headers=self.headers(announced), allow_redirects=False
        )
        self.sent_when_answered = self.sent
        self.answered.set()
        await resp.read()
        return resp


async def test_a_wrong_code_is_refused_before_the_files_are_read(small: Make) -> None:
    """A reply with a wrong code and a large file: 404 before the file is sent, on both routes."""
    client = await small()
    ticket = await post_message(client)
    number = ticket["ticket"]
    for path in (f"/tickets/{number}/replies", f"/api/v1/tickets/{number}/messages"):
        upload = SlowUpload({"code": "WRONG000", "text": "看看这个"}, 3 * MB)
        resp = await upload.post(client, path)
        assert resp.status == 404, path
        assert upload.sent_when_answered == len(upload.head), path
    assert (await resp.json())["error"] == "not_found"


async def test_an_announced_body_over_the_limit_is_413_unread(small: Make) -> None:
    """A Content-Length over the message limit is 413 before the body is sent."""
    client = await small()
    upload = SlowUpload({"name": "王女士", "contact": "wang@example.com", "text": "照片"}, 3 * MB)
    resp = await upload.post(client, "/api/v1/web/messages", announced=True)
    assert resp.status == 413
    assert upload.sent_when_answered == len(upload.head)
    body = await resp.json()
    assert body["error"] == "too_large"
    assert "all files together larger than 1 MB" in body["message"]


async def test_an_unannounced_body_is_refused_at_the_limit(small: Make) -> None:
    """A chunked body stops being read at the message limit: 413 with the text kept."""
    client = await small()
    ticket = await post_message(client)
    await settle(client)
    number, code = ticket["ticket"], ticket["access_code"]
    # 2 MB go at once, the rest is held back: the service must refuse on what it has.
    upload = SlowUpload({"code": code, "text": "补充的照片很大"}, 4 * MB, first=2 * MB + 256 * 1024)
    resp = await upload.post(client, f"/tickets/{number}/replies?lang=en")
    assert resp.status == 413
    assert upload.sent_when_answered == len(upload.head)
    page = await resp.text()
    assert "The files together are too large (at most 1 MB in all)." in page
    assert "补充的照片很大</textarea>" in page


async def test_a_client_past_its_address_limit_gets_429_unread(small: Make) -> None:
    """Past its address bucket a client gets 429 and Retry-After before its file is sent."""
    client = await small()
    for n in range(2):
        await post_message(client, contact=f"1390000000{n}")
    upload = SlowUpload({"name": "李先生", "contact": "13900000009", "text": "第三个"}, 3 * MB)
    resp = await upload.post(client, "/api/v1/web/messages")
    assert resp.status == 429
    assert upload.sent_when_answered == len(upload.head)
    assert (await resp.json())["error"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0


async def test_a_locked_ticket_gets_429_before_the_body_is_read(small: Make) -> None:
    """Once a ticket's wrong codes are spent, a reply with any code gets 429 unread."""
    client = await small()
    number = (await post_message(client))["ticket"]
    path = f"/api/v1/tickets/{number}/messages"
    for _ in range(2):
        wrong = await client.post(path, json={"code": "WRONG000", "text": "hi"})
        assert wrong.status == 404
    upload = SlowUpload({"text": "看看这个"}, 3 * MB)
    resp = await upload.post(client, path)
    assert resp.status == 429
    assert upload.sent_when_answered == len(upload.head)
    assert (await resp.json())["error"] == "rate_limited"


async def test_refused_bodies_do_not_use_up_the_address(small: Make) -> None:
    """Bodies refused before they count give the address token back: honest posts still go."""
    client = await small()
    for _ in range(3):
        resp = await client.post(
            "/api/v1/web/messages", json={"name": "王女士", "contact": "wang@example.com"}
        )
        assert resp.status == 422
    for n in range(2):
        await post_message(client, contact=f"1390000000{n}")


async def test_the_form_past_its_address_limit_keeps_the_text_unread(small: Make) -> None:
    """The no-JavaScript form past its address limit: 429, text kept, the file never read."""
    client = await small()
    for n in range(2):
        await post_message(client, contact=f"1390000000{n}")
    fields = {"name": "张三", "contact": "zhang@example.com", "text": "快递三天没动了"}
    upload = SlowUpload(fields, 3 * MB)
    resp = await upload.post(client, "/?lang=zh")
    assert resp.status == 429
    assert upload.sent_when_answered == len(upload.head)
    page = await resp.text()
    assert "提交太频繁了" in page and "快递三天没动了</textarea>" in page
