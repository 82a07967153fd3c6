"""An app's attachments: fetched after the 202 from allowed public hosts only, then served."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image
from pydantic import ValidationError

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.connectors.webhook import files
from intake_hub.connectors.webhook.config import WebhookConfig
from intake_hub.storage.models import Attachment
from tests.connectors.webhook.conftest import ROOT, eventually, message, send
from tests.connectors.webhook.kit import SECRET
from tests.web.conftest import AUTH, Client, settle

GPS_TAG = 0x8825
# Names our test resolver answers, all with 127.0.0.1 (where the file server listens).
NAMES = frozenset({"files.shop.test", "cdn.shop.test", "evil.test"})
ALLOWED = ["*.shop.test"]


def photo() -> bytes:
    """A JPEG as a phone makes it: with where it was taken in its EXIF."""
    exif = Image.Exif()
    exif[GPS_TAG] = {1: "N", 2: (31.0, 13.0, 48.0), 3: "E", 4: (121.0, 28.0, 12.0)}
    out = io.BytesIO()
    Image.new("RGB", (320, 240), "red").save(out, "JPEG", exif=exif)
    return out.getvalue()


class FixedNames(AbstractResolver):
    """A DNS stand-in: each of NAMES is 127.0.0.1, any other name does not exist."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """127.0.0.1 for a known name; OSError otherwise, as a failed lookup."""
        if host not in NAMES:
            raise OSError(f"unknown host {host}")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


@dataclass
class FileServer:
    """An app's file server on loopback: a photo, a flaky photo, redirects, a huge file."""

    fail_first: int = 2
    hits: dict[str, int] = field(default_factory=dict)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str, host: str = "files.shop.test") -> str:
        """An http URL of `path` on this server under the name `host`."""
        return f"http://{host}:{self.port}{path}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self.gate.set()
        app = web.Application()
        app.router.add_get("/photo.jpg", self._photo)
        app.router.add_get("/flaky.jpg", self._flaky)
        app.router.add_get("/huge.bin", self._huge)
        app.router.add_get("/streamed.bin", self._streamed)
        app.router.add_get("/hop", self._hop)
        app.router.add_get("/away", self._away)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _hit(self, request: web.Request) -> int:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        return self.hits[request.path]

    async def _photo(self, request: web.Request) -> web.Response:
        self._hit(request)
        await self.gate.wait()
        return web.Response(body=photo(), content_type="image/jpeg")

    async def _flaky(self, request: web.Request) -> web.Response:
        if self._hit(request) <= self.fail_first:
            return web.Response(status=500, text="down")
        return web.Response(body=photo(), content_type="image/jpeg")

    async def _huge(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(body=b"\xff" * 200_000, content_type="image/jpeg")

    async def _streamed(self, request: web.Request) -> web.StreamResponse:
        # No Content-Length: only reading stops it.
        self._hit(request)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(20):
            await resp.write(b"\xff" * 10_000)
        await resp.write_eof()
        return resp

    async def _hop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.url("/photo.jpg", "cdn.shop.test"))

    async def _away(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.url("/photo.jpg", "evil.test"))


@pytest.fixture(name="server")
async def server_fixture() -> AsyncIterator[FileServer]:
    """A running file server."""
    fake = FileServer()
    await fake.start()
    yield fake
    await fake.stop()


Make = Callable[..., Awaitable[Client]]


@pytest.fixture
def make(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Make:
    """The whole service with the shipped app.yaml plus the given options, fast retries."""
    monkeypatch.setattr(files, "lookup", FixedNames)
    monkeypatch.setenv("INTAKE_HUB_WEBHOOK_SECRET", SECRET)

    async def start(**options: Any) -> Client:
        directory = tmp_path / "connectors"
        directory.mkdir()
        options = {
            "allow_http": True,
            "allow_private_addresses": True,
            "attachment_poll_s": 0.05,
            "attachment_retry_s": [0.05],
            "attachment_max_bytes": 100_000,
        } | options
        extra = "".join(f"{key}: {json.dumps(value)}\n" for key, value in options.items())
        shipped = (ROOT / "connectors" / "app.yaml").read_text()
        (directory / "app.yaml").write_text(shipped + extra)
        app = create_app(replace(settings, database_url=db_url, connectors_dir=directory))
        client = await aiohttp_client(app)
        return client

    return start


def _attachment(url: str, name: str = "jug.jpg") -> dict[str, Any]:
    return {"url": url, "name": name, "content_type": "image/jpeg", "size": 1000}


async def _sent(client: Client, msg_id: str, *urls: str) -> str:
    """Post a message with attachments at `urls`; the ticket number of the 202."""
    body = message(attachments=[_attachment(u) for u in urls])
    resp = await send(client, body, msg_id)
    assert resp.status == 202, await resp.text()
    number: str = (await resp.json())["ticket"]
    return number


async def _rows() -> list[dict[str, Any]]:
    return await Attachment.all().order_by("position").values("kind", "state", "error", "name")


async def _settled(count: int) -> list[dict[str, Any]]:
    """The attachment rows once `count` of them are no longer pending."""

    async def done() -> bool:
        return sum(r["state"] != "pending" for r in await _rows()) >= count

    await eventually(done)
    return await _rows()


async def test_an_allowed_photo_is_fetched_after_the_202_and_served_clean(
    make: Make, server: FileServer
) -> None:
    """202 while the file server still holds the photo; then stored, GPS gone, served."""
    client = await make(attachment_hosts=ALLOWED)
    server.gate.clear()
    number = await _sent(client, "msg_photo", server.url("/photo.jpg"))
    await settle(client)
    assert [r["state"] for r in await _rows()] == ["pending"]
    server.gate.set()
    [row] = await _settled(1)
    assert (row["kind"], row["state"], row["error"]) == ("remote", "stored", None)
    ticket = await (await client.get(f"/api/v1/tickets/{number}", headers=AUTH)).json()
    [inbound] = [m for m in ticket["messages"] if m["direction"] == "in"]
    [item] = inbound["attachments"]
    assert (item["name"], item["content_type"], item["state"]) == (
        "jug.jpg",
        "image/jpeg",
        "stored",
    )
    resp = await client.get(item["url"], headers=AUTH)
    assert resp.status == 200
    image = Image.open(io.BytesIO(await resp.read()))
    assert image.size == (320, 240)
    assert GPS_TAG not in image.getexif()


async def test_a_host_not_allowed_is_refused_unfetched(make: Make, server: FileServer) -> None:
    """A URL on a host outside `attachment_hosts` fails as refused; nothing is requested."""
    client = await make(attachment_hosts=["files.shop.test"])
    await _sent(client, "msg_evil", server.url("/photo.jpg", "evil.test"))
    [row] = await _settled(1)
    assert row["state"] == "failed"
    assert row["error"].startswith("refused: host evil.test is not in attachment_hosts")
    assert server.hits == {}


async def test_loopback_addresses_are_refused_unless_allowed(
    make: Make, server: FileServer
) -> None:
    """An allowed name resolving to 127.0.0.1, or the literal itself: refused, unrequested."""
    client = await make(
        attachment_hosts=["*.shop.test", "127.0.0.1"], allow_private_addresses=False
    )
    await _sent(
        client,
        "msg_loop",
        server.url("/photo.jpg"),
        server.url("/photo.jpg", "127.0.0.1"),
    )
    by_name, literal = await _settled(2)
    assert by_name["state"] == literal["state"] == "failed"
    assert by_name["error"] == "refused: files.shop.test resolves to a loopback address (127.0.0.1)"
    assert literal["error"] == "refused: 127.0.0.1 is a loopback address"
    assert server.hits == {}


async def test_redirects_are_checked_at_every_hop(make: Make, server: FileServer) -> None:
    """A redirect to another allowed host is followed; one to a host not allowed is refused."""
    client = await make(attachment_hosts=ALLOWED)
    await _sent(client, "msg_hops", server.url("/hop"), server.url("/away"))
    followed, refused = await _settled(2)
    assert followed["state"] == "stored"
    assert refused["state"] == "failed"
    assert refused["error"].startswith("refused: host evil.test is not in attachment_hosts")
    assert server.hits == {"/photo.jpg": 1}


async def test_a_failing_server_is_retried_until_it_serves(make: Make, server: FileServer) -> None:
    """Two 500s, then the photo: stored once, after three requests."""
    client = await make(attachment_hosts=ALLOWED)
    await _sent(client, "msg_flaky", server.url("/flaky.jpg"))
    [row] = await _settled(1)
    assert row["state"] == "stored"
    assert server.hits == {"/flaky.jpg": 3}
    assert await Attachment.filter(state="stored").count() == 1


async def test_a_file_over_the_limit_fails_too_large(make: Make, server: FileServer) -> None:
    """Over `attachment_max_bytes`, declared or streamed: failed too_large, not retried."""
    client = await make(attachment_hosts=ALLOWED)
    await _sent(client, "msg_huge", server.url("/huge.bin"), server.url("/streamed.bin"))
    declared, streamed = await _settled(2)
    assert declared["state"] == streamed["state"] == "failed"
    assert declared["error"].startswith("too_large")
    assert streamed["error"].startswith("too_large")
    assert server.hits == {"/huge.bin": 1, "/streamed.bin": 1}


async def test_without_allowed_hosts_attachments_stay_links(
    client: Client, server: FileServer
) -> None:
    """The shipped instance allows no host: the attachment is a link and is never fetched."""
    url = "https://files.shop.test/u/1/jug.jpg"
    number = await _sent(client, "msg_link", url)
    await settle(client)
    ticket = await (await client.get(f"/api/v1/tickets/{number}", headers=AUTH)).json()
    [inbound] = [m for m in ticket["messages"] if m["direction"] == "in"]
    [item] = inbound["attachments"]
    assert (item["kind"], item["state"], item["ref"], item["url"]) == ("link", "link", url, None)
    assert server.hits == {}


@pytest.mark.parametrize("url", ["http://files.shop.test/a.jpg", "ftp://files.shop.test/a.jpg"])
async def test_only_https_urls_are_taken_by_default(client: Client, url: str) -> None:
    """`http://` (unless the instance allows it) and other schemes: 422 naming the URL."""
    body = message(attachments=[_attachment("https://files.shop.test/ok.jpg"), _attachment(url)])
    resp = await send(client, body, "msg_scheme")
    assert resp.status == 422
    [error] = (await resp.json())["fields"]
    assert error["field"] == "data.attachments.1.url"
    assert await Attachment.all().count() == 0


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("files.shop.test", True),
        ("FILES.shop.test.", True),
        ("shop.test", False),
        ("evilshop.test", False),
        ("files.shop.test.evil.test", False),
    ],
)
def test_a_star_pattern_allows_subdomains_only(host: str, allowed: bool) -> None:
    """`*.shop.test` is any name under shop.test, not shop.test itself nor a look-alike."""
    assert files.host_allowed(host, ["*.shop.test"]) is allowed


@pytest.mark.parametrize(
    ("address", "private_ok", "why"),
    [
        ("93.184.216.34", False, None),
        ("127.0.0.1", False, "loopback"),
        ("::ffff:127.0.0.1", False, "loopback"),
        ("10.1.2.3", False, "private"),
        ("fd00::1", False, "private"),
        ("100.64.0.1", False, "non-public"),
        ("10.1.2.3", True, None),
        ("169.254.169.254", True, "link-local"),
        ("224.0.0.1", True, "multicast"),
        ("0.0.0.0", True, "unspecified"),
        ("240.0.0.1", True, "reserved"),
    ],
)
def test_addresses_inside_are_refused(address: str, private_ok: bool, why: str | None) -> None:
    """Loopback and private only when allowed; link-local (metadata) and the like never."""
    assert files.address_refusal(address, allow_private=private_ok) == why


@pytest.mark.parametrize(
    "bad", ["*", "http://files.shop.test", "files.shop.test/path", "a b", "::::"]
)
def test_attachment_hosts_are_names_or_star_patterns(bad: str) -> None:
    """Anything but a host name, an address or `*.name` is a configuration error."""
    with pytest.raises(ValidationError):
        WebhookConfig(attachment_hosts=[bad])
    assert WebhookConfig(attachment_hosts=[" Files.Shop.Test. "]).attachment_hosts == [
        "files.shop.test"
    ]
