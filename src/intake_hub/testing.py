"""Helpers for tests, here and in projects building on intake-hub: envelope builders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from intake_hub.envelope import Channel, CustomerRef, Envelope, Identity
from intake_hub.ids import uuid7
from intake_hub.ticketno import TicketNumbers

_numbers = TicketNumbers(node=1023)


def make_envelope(
    text: str = "尺码不对，想换大一码，订单号 4102938475610",
    *,
    channel: Channel = "web",
    customer: str = "alice@example.com",
    identity: Identity = "verified",
    **fields: Any,
) -> Envelope:
    """A fresh inbound envelope with realistic defaults; override any field by keyword.

    The customer is `verified` unless asked otherwise, as an app's or WeChat's would be.
    """
    env_id = fields.pop("id", uuid7())
    values: dict[str, Any] = {
        "id": env_id,
        "channel": channel,
        "source": f"{channel}/{channel}",
        "external_id": str(env_id),
        "ticket": _numbers.next(),
        "customer": CustomerRef(key=customer, name="Alice", identity=identity),
        "text": text,
        "received_at": datetime.now(UTC),
    }
    values.update(fields)
    return Envelope(**values)


class FakeWeChatApi:
    """WeChat's server API on loopback: issues tokens, records customer-service sends.

    `fail_next(code, times)` makes the next `times` sends answer `code`: an HTTP status
    when it is 5xx, else that WeChat errcode (45015, 45047, 40001, 42001, -1).
    `expire_tokens()` makes every token issued so far answer 40001.
    Media: `add_media` serves a file at `/cgi-bin/media/get`; an unknown or `expire_media`d
    id answers 40007; `media_delay` slows every download, `fail_media(times)` answers 500.
    """

    def __init__(self, token_delay: float = 0.0) -> None:
        self.token_delay = token_delay
        self.fetches: list[dict[str, Any]] = []
        self.sends: list[dict[str, Any]] = []
        self.attempts = 0
        self.valid: set[str] = set()
        self._failures: list[int] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_delay = 0.0
        self.media_calls: list[str] = []
        self.media_served: list[str] = []
        self._media_failures = 0
        self._runner: Any = None
        self.base = ""

    def fail_next(self, code: int, times: int = 1) -> None:
        """Answer the next `times` send calls with `code` instead of sending."""
        self._failures += [code] * times

    def expire_tokens(self) -> None:
        """Every token issued so far is now rejected with 40001."""
        self.valid.clear()

    def add_media(self, media_id: str, data: bytes, content_type: str) -> None:
        """Serve `data` as the temporary media `media_id`."""
        self.media[media_id] = (data, content_type)

    def expire_media(self, media_id: str) -> None:
        """`media_id` is past WeChat's 3 days: it answers 40007 from now on."""
        self.media.pop(media_id, None)

    def fail_media(self, times: int = 1) -> None:
        """Answer the next `times` media downloads with HTTP 500."""
        self._media_failures += times

    @property
    def texts(self) -> list[str]:
        """The text of every message sent, in order."""
        return [s["text"]["content"] for s in self.sends]

    async def start(self) -> str:
        """Serve on a free loopback port; returns the base URL to use as `api_base`."""
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        app.router.add_get("/cgi-bin/media/get", self._media)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: Any) -> Any:
        import asyncio

        from aiohttp import web

        body = await request.json()
        self.fetches.append(body)
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if not body.get("appid") or not body.get("secret"):
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        token = f"TOKEN-{len(self.fetches)}"
        self.valid.add(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _send(self, request: Any) -> Any:
        from aiohttp import web

        self.attempts += 1
        body = await request.json()
        if self._failures:
            code = self._failures.pop(0)
            if 500 <= code < 600:
                return web.Response(status=code, text="upstream error")
            return web.json_response({"errcode": code, "errmsg": "fake failure"})
        if request.query.get("access_token") not in self.valid:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.sends.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _media(self, request: Any) -> Any:
        import asyncio

        from aiohttp import web

        media_id = request.query.get("media_id", "")
        self.media_calls.append(media_id)
        if self.media_delay:
            await asyncio.sleep(self.media_delay)
        if self._media_failures:
            self._media_failures -= 1
            return web.Response(status=500, text="upstream error")
        if request.query.get("access_token") not in self.valid:
            # WeChat answers its errors as text/plain JSON on this endpoint.
            return web.Response(
                text='{"errcode":40001,"errmsg":"invalid credential"}', content_type="text/plain"
            )
        if media_id not in self.media:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        data, content_type = self.media[media_id]
        self.media_served.append(media_id)
        disposition = f'attachment; filename="{media_id}.bin"'
        return web.Response(
            body=data, content_type=content_type, headers={"Content-Disposition": disposition}
        )
