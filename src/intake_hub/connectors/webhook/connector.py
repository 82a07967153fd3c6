"""An app backend's webhook: Standard Webhooks signed events in, tickets and profiles out.

Each check refuses before anything is stored: size (413), signature (401), JSON (400),
event shape (422), the named ticket's owner (422, or 409 while it is not stored yet).
Only then is the `webhook-id` claimed, by a unique row, so a retry or a duplicate sent at
the same instant gets the first answer and makes nothing new.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

import orjson
from aiohttp import web
from pydantic import ValidationError

from intake_hub import ticketno
from intake_hub.connectors.base import ConnectorConfig, Core
from intake_hub.connectors.webhook import openapi
from intake_hub.connectors.webhook.config import WebhookConfig
from intake_hub.connectors.webhook.events import EventDispatcher
from intake_hub.connectors.webhook.files import FileFetcher
from intake_hub.connectors.webhook.normalize import customer_key, tags, to_envelope
from intake_hub.connectors.webhook.schemas import (
    ALLOW_HTTP,
    EVENTS,
    CustomerAccepted,
    CustomerUpdated,
    MessageAccepted,
    MessageCreated,
    MessageData,
)
from intake_hub.connectors.webhook.signing import Unverified, verify
from intake_hub.envelope import Identity
from intake_hub.jsonapi import (
    ApiDoc,
    BadRequest,
    FieldError,
    field_errors,
    idempotency_key_ok,
    keyed_response,
)
from intake_hub.periodic import Periodic
from intake_hub.storage import app_events
from intake_hub.storage.customers import Profile, is_vip, update_verified
from intake_hub.storage.webkeys import Claim, WebKeys
from intake_hub.tickets.outbound import Outbound
from intake_hub.tickets.read import ticket_of

log = logging.getLogger(__name__)

CHANNEL = "webhook"
# The clock signed timestamps are judged by (a module attribute so tests can set it).
clock: Callable[[], float] = time.time
# Namespace of envelope ids: one per (instance, webhook-id), so a re-emit is a duplicate.
_IDS = uuid.UUID("0c3e5a51-7d2f-5b6e-8a4c-9e1f2d3b4a57")
# Senders retry for a day or more (Svix: about 28 h); ids are kept well beyond that.
KEY_RETENTION = timedelta(days=3)
PRUNE_EVERY_S = 3600.0
_WEBHOOK_ID = "webhook-id"


def _invalid(name: str, message: str, summary: str = "Some fields are invalid.") -> BadRequest:
    return BadRequest(422, "invalid_fields", summary, [FieldError(field=name, message=message)])


@dataclass
class WebhookConnector:
    """Takes one app backend's signed events: customers' messages and profile updates."""

    config: WebhookConfig
    core: Core
    keys: WebKeys = field(default_factory=WebKeys)
    _pruner: Periodic = field(init=False)
    _events: EventDispatcher = field(init=False)
    # Fetches the app's attachments; None when no host is allowed (they stay links).
    _files: FileFetcher | None = field(default=None, init=False)

    Config: ClassVar[type[ConnectorConfig]] = WebhookConfig
    type: ClassVar[str] = "webhook"

    def __post_init__(self) -> None:
        self._pruner = Periodic(f"{self.source} webhook-id pruning", PRUNE_EVERY_S, self._prune)
        self._events = EventDispatcher(self.config)
        if self.config.fetches:
            self._files = FileFetcher(self.config, self.core.files)
        self._secrets = self.config.keys

    @classmethod
    def create(cls, config: ConnectorConfig, core: Core) -> Self:
        """The app webhook for `config`."""
        assert isinstance(config, WebhookConfig)
        return cls(config, core)

    @property
    def source(self) -> str:
        """`webhook/<name>`."""
        return f"webhook/{self.config.name}"

    @property
    def identity(self) -> Identity:
        """Verified: the app vouches for its own user id under its signature."""
        return "verified"

    @property
    def outbound(self) -> Outbound | None:
        """None: the app reads tickets through its status URLs."""
        return None

    @property
    def _instance(self) -> str:
        """The instance the `webhook-id`s are claimed under (shared with web keys' table)."""
        return f"webhook:{self.config.name}"

    def openapi(self) -> ApiDoc:
        """`POST /hooks/{instance}` with one JSON Schema per event type."""
        return openapi.DOC

    def routes(self) -> Sequence[web.RouteDef]:
        """The instance's one route, mounted by the app."""
        return [web.post(f"/hooks/{self.config.name}", self.receive)]

    async def start(self) -> None:
        """Forget old webhook ids and app events hourly; send the app its events; fetch files."""
        self._pruner.start()
        await self._events.start()
        if self._files is not None:
            await self._files.start()

    async def stop(self) -> None:
        """Stop fetching files, sending events and pruning."""
        if self._files is not None:
            await self._files.stop()
        await self._events.stop()
        await self._pruner.stop()

    async def _prune(self) -> None:
        now = datetime.now(UTC)
        if gone := await self.keys.prune(self._instance, now - KEY_RETENTION):
            log.info("%s: forgot %d old webhook ids", self.source, gone)
        kept = timedelta(days=self.config.events_retention_days)
        if gone := await app_events.prune(self.source, now - kept):
            log.info("%s: forgot %d delivered or dead app events", self.source, gone)

    def _refuse(self, reason: str) -> BadRequest:
        """The 401 for a request whose signature does not hold; never logs what it carried."""
        self.core.metrics.rejected.labels(CHANNEL, reason).inc()
        log.info("%s: refused an unverified request: %s", self.source, reason)
        return BadRequest(401, "unauthorized", f"Webhook signature check failed: {reason}.")

    async def _body(self, request: web.Request) -> bytes:
        """The raw body, refused (413) as soon as it is over the limit."""
        limit = self.config.max_body_bytes
        too_large = BadRequest(413, "too_large", f"The body is over {limit} bytes.")
        if (request.content_length or 0) > limit:
            self.core.metrics.rejected.labels(CHANNEL, "too_large").inc()
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                self.core.metrics.rejected.labels(CHANNEL, "too_large").inc()
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def receive(self, request: web.Request) -> web.Response:
        """`POST /hooks/<name>`: a signed event; 202 for a message, 200 for a profile."""
        started = time.perf_counter()
        body = await self._body(request)
        headers = request.headers
        msg_id = headers.get(_WEBHOOK_ID, "")
        try:
            verify(
                self._secrets,
                msg_id,
                headers.get("webhook-timestamp", ""),
                body,
                headers.get("webhook-signature", ""),
                now=clock(),
                tolerance_s=self.config.tolerance_s,
            )
        except Unverified as exc:
            raise self._refuse(exc.reason) from None
        if not idempotency_key_ok(msg_id):
            raise _invalid(_WEBHOOK_ID, "1-100 printable characters")
        event = _event(body, allow_http=self.config.allow_http)
        body_hash = hashlib.sha256(body).hexdigest()
        if isinstance(event, MessageCreated):
            return await self._message(event.data, msg_id, body_hash, started)
        return await self._profile(event, msg_id, body_hash)

    async def _claim(self, msg_id: str, body_hash: str) -> tuple[Claim, str | None]:
        """Take `msg_id` for this request: (our claim, None), or (ours, the first's ticket)."""
        mine = Claim(self.core.numbers.next(), body_hash)
        held = await self.keys.claim(self._instance, msg_id, mine)
        if held.body_hash != body_hash:
            raise _invalid(
                _WEBHOOK_ID,
                "already used with another body",
                "This webhook-id was already used with another body.",
            )
        return mine, (held.ticket if held.ticket != mine.ticket else None)

    async def _release(self, msg_id: str, claim: Claim) -> None:
        try:
            await self.keys.release(self._instance, msg_id, claim)
        except Exception:
            log.exception("%s: releasing a webhook id failed", self.source)

    async def _owned(self, key: str, wanted: str) -> str:
        """The ticket `data.ticket` names, when it is this customer's; else 422 (409: not yet)."""
        number = ticketno.normalize(wanted)
        if number is None:
            raise _invalid("data.ticket", "not a ticket number")
        found = await ticket_of(number, CHANNEL, key)
        if found is None:
            raise BadRequest(
                409,
                "not_yet_stored",
                "No ticket with this number is stored (yet); retry shortly.",
                [FieldError(field="data.ticket", message="not stored yet")],
            )
        canonical, mine = found
        if not mine:
            raise _invalid("data.ticket", "not a ticket of this customer")
        return canonical

    def _accepted(self, number: str) -> MessageAccepted:
        return MessageAccepted(ticket=number, status_url=self.core.links.status_url(number))

    async def _message(
        self, data: MessageData, msg_id: str, body_hash: str, started: float
    ) -> web.Response:
        """Emit the customer's message (a new ticket or a follow-up); 202 with its number."""
        key = customer_key(self.config.name, data.customer.id)
        owned = await self._owned(key, data.ticket) if data.ticket is not None else None
        # Tags the app left out: the VIP mark a `customer.updated` recorded still counts.
        vip = data.customer.tags is None and await is_vip(CHANNEL, key)
        mine, first = await self._claim(msg_id, body_hash)
        if first is not None:
            return keyed_response(self._accepted(first), 202, True)
        env = to_envelope(
            data,
            instance=self.config.name,
            webhook_id=msg_id,
            env_id=uuid.uuid5(_IDS, f"{self.source}:{msg_id}"),
            ticket=mine.ticket,
            received_at=datetime.now(UTC),
            owned=owned,
            vip=vip,
            fetch=self.config.fetches,
        )
        try:
            await self.core.emit(env)
        except Exception:
            # Not accepted: the id must not keep answering with a ticket that never comes.
            await self._release(msg_id, mine)
            raise
        self.core.metrics.intake_latency.labels(CHANNEL).observe(time.perf_counter() - started)
        return keyed_response(self._accepted(mine.ticket), 202, False)

    async def _profile(self, event: CustomerUpdated, msg_id: str, body_hash: str) -> web.Response:
        """Record the verified customer's name, phone, email and VIP mark; 200."""
        customer = event.data.customer
        answer = CustomerAccepted(customer=customer.id)
        mine, first = await self._claim(msg_id, body_hash)
        if first is not None:
            return keyed_response(answer, 200, True)
        told = tags(customer) if customer.tags is not None else None
        profile = Profile(
            name=customer.name or None,
            phone=customer.phone or None,
            email=customer.email.lower() if customer.email else None,
            vip=None if told is None else "vip" in told,
        )
        try:
            await update_verified(CHANNEL, customer_key(self.config.name, customer.id), profile)
        except Exception:
            await self._release(msg_id, mine)
            raise
        return keyed_response(answer, 200, False)


def _event(body: bytes, *, allow_http: bool) -> MessageCreated | CustomerUpdated:
    """The event in a verified body: 400 when not JSON, 422 naming the first bad field.

    `allow_http`: attachment URLs may be `http://` (else only `https://`).
    """
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest(400, "invalid_json", "The body is not valid JSON (UTF-8).") from None
    if not isinstance(data, dict):
        raise _invalid("body", "expected an object", "The body must be a JSON object.")
    kind = data.get("type")
    model = EVENTS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(EVENTS))
        raise _invalid("type", f"unknown event type (known: {known})")
    try:
        return model.model_validate(data, context={ALLOW_HTTP: allow_http})
    except ValidationError as exc:
        raise BadRequest(
            422, "invalid_fields", "Some fields are invalid.", field_errors(exc)
        ) from None
