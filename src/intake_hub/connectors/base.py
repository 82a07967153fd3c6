"""The connector contract: what every channel is, and the part of the core it is lent.

A connector verifies what arrives, normalises it into an envelope, hands it to `emit`
(or `request`, to wait for the auto-reply) and answers its caller. It never sees the bus,
the database sessions or another connector. The registry maps `type:` in a
`connectors/*.yaml` file to the class, and the app mounts every instance in one loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, Self
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from intake_hub.access import Links
from intake_hub.attachments import AttachmentStore
from intake_hub.envelope import Envelope, Identity, Reply
from intake_hub.jsonapi import ApiDoc
from intake_hub.metrics import Metrics
from intake_hub.ratelimit import Buckets, Limit
from intake_hub.status import OpenTicket
from intake_hub.ticketno import TicketNumbers
from intake_hub.tickets.attachments import AttachmentFile
from intake_hub.tickets.outbound import Outbound
from intake_hub.tickets.views import TicketStatus

Emit = Callable[[Envelope], Awaitable[None]]
# Emit and wait at most `budget` seconds for the auto-reply; None when it is not there yet.
Request = Callable[[Envelope, float], Awaitable[Reply | None]]


class ConnectorConfig(BaseModel):
    """One channel instance's `connectors/<file>.yaml`; each connector extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")

    @property
    def enabled(self) -> bool:
        """False when the instance lacks what it needs (an unset token): skipped, logged."""
        return True


_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class Rate(BaseModel):
    """A limit in a connector's YAML: `{count: 30, per: minute, burst: 10}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: PositiveInt
    per: Literal["second", "minute", "hour", "day"]
    burst: PositiveInt | None = Field(default=None, description="At once; default `count`")

    def limit(self) -> Limit:
        """The token bucket this rate describes."""
        return Limit(rate=self.count / _SECONDS[self.per], burst=self.burst or self.count)


# The ticket a number names (its own or a follow-up's) as its customer may see it; the
# connector shows it only to whom the trust model allows (the code's holder).
StatusLookup = Callable[[str], Awaitable[TicketStatus | None]]
# (ticket number, attachment id, thumbnail?) -> one of that ticket's files, for the holder
# of its code; None when the file is not that ticket's or not stored.
FileLookup = Callable[[str, UUID, bool], Awaitable[AttachmentFile | None]]


@dataclass(frozen=True)
class Core:
    """The services a connector may use; nothing else of the core is reachable from it."""

    emit: Emit
    request: Request
    numbers: TicketNumbers
    links: Links
    metrics: Metrics
    status: StatusLookup
    # The customer's open tickets as the current reply rules word them ("my tickets").
    tickets_text: Callable[[Sequence[OpenTicket]], str | None]
    # Rate limits shared by the instance's processes; None when the operator turned them off.
    limits: Buckets | None
    # The counting key of a request's client (trusted proxies honoured).
    client: Callable[[web.BaseRequest], str]
    # Messages waiting in the deepest stage queue: admission control's measure of "behind".
    backlog: Callable[[], int]
    # Where a message's files go before the message is accepted (content-addressed).
    files: AttachmentStore
    file: FileLookup


class Connector(Protocol):
    """One channel instance: routes, lifecycle, and optionally a way out to its customers."""

    Config: ClassVar[type[ConnectorConfig]]
    type: ClassVar[str]  # the `type:` of its YAML files, and the registry key

    @classmethod
    def create(cls, config: ConnectorConfig, core: Core) -> Self:
        """The instance for `config` (of type `Config`), using only what `core` lends."""
        ...

    @property
    def source(self) -> str:
        """`<type>/<name>`: stamped on its envelopes and on the tickets they make."""
        ...

    @property
    def identity(self) -> Identity:
        """Whether this instance vouches for the customers it names (the trust model)."""
        ...

    @property
    def outbound(self) -> Outbound | None:
        """How replies and notices reach its customers; None: the status page only."""
        ...

    def openapi(self) -> ApiDoc | None:
        """Its JSON routes for the OpenAPI document; None when it has none."""
        ...

    def routes(self) -> Sequence[web.RouteDef]:
        """Its HTTP routes (none for a channel that listens elsewhere, such as SMTP)."""
        ...

    async def start(self) -> None:
        """Start background work (dispatchers, listeners); the database is open by now."""
        ...

    async def stop(self) -> None:
        """Stop background work; called before the database closes."""
        ...
