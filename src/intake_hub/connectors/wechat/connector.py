"""The WeChat channel's HTTP side: URL check, verified push in, passive reply out in time.

`verify` decides whether a request is WeChat's, `normalize` reads the push, the `book`
makes WeChat's retries one ticket with one answer, and `events` answers the pushes that
make no ticket; this module wires them to the routes and the connector contract.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from aiohttp import web
from wechatpy import create_reply
from wechatpy.crypto import WeChatCrypto

from intake_hub.attachments import AttachmentStore
from intake_hub.connectors.base import ConnectorConfig, Core, Request
from intake_hub.connectors.wechat import followers as follower_rows
from intake_hub.connectors.wechat import outbox as outbox_rows
from intake_hub.connectors.wechat import token_lease
from intake_hub.connectors.wechat.book import Book
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.deliveries import Deliveries
from intake_hub.connectors.wechat.events import Events
from intake_hub.connectors.wechat.media import MediaFetcher
from intake_hub.connectors.wechat.nonces import Nonces
from intake_hub.connectors.wechat.normalize import (
    BadMessage,
    Inbound,
    NoTicket,
    cdata_safe,
    parse,
    to_envelope,
)
from intake_hub.connectors.wechat.outbound import Dispatcher, WeChatOutbox
from intake_hub.connectors.wechat.stores import (
    DeliveryStore,
    FollowerStore,
    NonceStore,
    OutboxStore,
    TokenStore,
)
from intake_hub.connectors.wechat.verify import Verifier
from intake_hub.envelope import Identity
from intake_hub.ids import uuid7
from intake_hub.jsonapi import ApiDoc
from intake_hub.metrics import Metrics
from intake_hub.status import OpenTicket
from intake_hub.ticketno import TicketNumbers
from intake_hub.tickets.outbound import Outbound

log = logging.getLogger(__name__)

SUCCESS = "success"


@dataclass
class WeChatConnector:
    """One official account at `/hooks/<name>`: verifies, dedupes, emits, answers in time."""

    Config: ClassVar[type[ConnectorConfig]] = WeChatConfig
    type: ClassVar[str] = "wechat"

    config: WeChatConfig
    request: Request
    numbers: TicketNumbers
    metrics: Metrics
    # The customer's open tickets as the rules word them (the "my tickets" button's answer).
    tickets_text: Callable[[Sequence[OpenTicket]], str | None]
    # Where customers' images, voice and video go once fetched; None: they stay pending.
    files: AttachmentStore | None = None
    deliveries: DeliveryStore = field(default_factory=Deliveries)
    nonces: NonceStore = field(default_factory=Nonces)
    followers: FollowerStore = follower_rows
    outbox: OutboxStore = outbox_rows
    lease: TokenStore = token_lease
    _verifier: Verifier = field(init=False)
    _book: Book = field(init=False)
    _events: Events = field(init=False)
    _outbound: WeChatOutbox | None = field(default=None, init=False)
    _dispatcher: Dispatcher | None = field(default=None, init=False)
    _media: MediaFetcher | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        c = self.config
        self._verifier = Verifier(c, self.metrics, self.nonces)
        self._book = Book(
            c.name,
            c.reply_budget_s,
            self.request,
            self.deliveries,
            self.outbox,
            nonces=self.nonces,
            window_s=c.max_clock_skew_s,
        )
        self._events = Events(c.name, self.followers, self.tickets_text)
        if c.can_send:
            self._outbound = WeChatOutbox(c, self.outbox)
            self._dispatcher = Dispatcher(c, outbox=self.outbox, lease=self.lease)
            if self.files is not None:
                self._media = MediaFetcher(c, self.files, lease=self.lease)

    @classmethod
    def create(cls, config: ConnectorConfig, core: Core) -> Self:
        """The connector for one `WeChatConfig`, emitting through `core.request`."""
        if not isinstance(config, WeChatConfig):
            raise TypeError(f"a WeChat connector needs a WeChatConfig, not {type(config)}")
        return cls(config, core.request, core.numbers, core.metrics, core.tickets_text, core.files)

    @property
    def source(self) -> str:
        """`wechat/<name>`: stamped on its envelopes and on the tickets they make."""
        return f"wechat/{self.config.name}"

    @property
    def identity(self) -> Identity:
        """Verified in safe mode only: there WeChat's signature covers the pushed body."""
        return "verified" if self.config.aes_key else "claimed"

    @property
    def outbound(self) -> Outbound | None:
        """The customer-service API through the outbox; None without an app secret."""
        return self._outbound

    @property
    def path(self) -> str:
        """The URL to enter on WeChat's server settings page."""
        return f"/hooks/{self.config.name}"

    def openapi(self) -> ApiDoc | None:
        """None: WeChat's XML pushes are WeChat's protocol, not part of the hub's API."""
        return None

    def routes(self) -> list[web.RouteDef]:
        """The channel's routes, mounted by the app."""
        return [web.get(self.path, self.verify_url), web.post(self.path, self.receive)]

    async def start(self) -> None:
        """Prune old delivery and nonce rows hourly; send messages and fetch media if it can."""
        if not self.config.encrypted:
            log.warning(
                "wechat/%s: plaintext mode (no aes_key): safe mode is recommended. WeChat's "
                "signature does not cover a plaintext body, so senders are only claimed and "
                "a signed URL can carry a forged body until its timestamp expires "
                "(docs/connectors/wechat.md)",
                self.config.name,
            )
        self._book.start()
        if self._dispatcher is not None:
            await self._dispatcher.start()
        if self._media is not None:
            await self._media.start()

    async def stop(self) -> None:
        """Stop fetching, sending and pruning."""
        if self._media is not None:
            await self._media.stop()
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        await self._book.stop()

    async def verify_url(self, request: web.Request) -> web.Response:
        """`GET /hooks/<name>`: WeChat's URL check; echoes `echostr` when signed and fresh."""
        await self._verifier.check_url(request.query)
        # Official accounts send the echostr in plaintext even in safe mode.
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        """`POST /hooks/<name>`: a push; the passive reply, or `success` once out of time."""
        started = time.perf_counter()
        opened = await self._verifier.open(request)
        identity: Identity = "verified" if opened.decrypted else "claimed"
        try:
            inbound = parse(opened.body)
            outcome = to_envelope(
                inbound,
                env_id=uuid7(),
                ticket=self.numbers.next(),
                received_at=datetime.now(UTC),
                instance=self.config.name,
                welcome=self.config.welcome,
                menu=self.config.menu,
                my_tickets_key=self.config.my_tickets_key,
                identity=identity,
            )
        except BadMessage as exc:
            raise self._verifier.reject("unreadable", web.HTTPBadRequest(), str(exc)) from None
        if isinstance(outcome, NoTicket):
            left = self._book.remaining(started)
            answer = await self._events.answer(outcome, inbound, identity, left)
        else:
            answer = await self._book.answer(outcome, started)
        response = self._render(answer, inbound, opened.crypto, request.query.get("nonce", ""))
        self.metrics.intake_latency.labels("wechat").observe(time.perf_counter() - started)
        return response

    def _render(
        self, answer: str, inbound: Inbound, crypto: WeChatCrypto | None, nonce: str
    ) -> web.Response:
        if not answer.strip():
            return web.Response(text=SUCCESS)
        xml: Any = create_reply(cdata_safe(answer), inbound.message).render()
        if crypto is not None:
            xml = crypto.encrypt_message(xml, nonce, str(int(time.time())))
        return web.Response(text=str(xml), content_type="application/xml")
