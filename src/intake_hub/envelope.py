"""The normalised message every connector produces and every stage enriches.

No I/O imports here: the envelope must cross any bus, so it holds only plain data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["web", "webhook", "wechat", "email", "phone"]
CHANNELS: tuple[Channel, ...] = ("web", "webhook", "wechat", "email", "phone")

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")

# Whether the channel vouches for who the customer is (docs/architecture.md, trust model):
# `verified` under a provider's signature or an agent's entry, `claimed` when anyone could
# have typed it (a web contact, an email From).
Identity = Literal["verified", "claimed"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CustomerRef(_Frozen):
    """Who wrote, as the channel knows them: `key` is unique within the channel."""

    key: str = Field(min_length=1, max_length=200)
    # Claimed unless the connector vouches for it: an old envelope without the field must
    # not join anyone's ticket.
    identity: Identity = "claimed"
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    # WeChat's UnionID when the push carries one: the same person on another official
    # account of the merchant, whose `key` (openid) differs.
    union_id: str | None = Field(default=None, max_length=64)
    # Tags the merchant keeps for this customer (vip ...): they can raise priority.
    tags: tuple[str, ...] = ()


class AttachmentRef(_Frozen):
    """A file kept by reference, never inline bytes.

    `kind` "file": `ref` is the SHA-256 digest of bytes already in the attachment store,
    checked at the edge (`content_type` sniffed, `name` sanitised). Other kinds name what
    a provider holds: a WeChat media id to fetch (`media:...`), a link, a location.
    """

    kind: str
    ref: str
    name: str | None = None
    content_type: str | None = None
    size: int | None = None


class Proof(_Frozen):
    """Why a message may continue one ticket whoever its sender claims to be.

    `access_code`: the sender held the ticket's access code, checked at the edge.
    `owner`: a verified sender named its own ticket, its ownership checked at the edge;
    or a mail named a ticket from that ticket's own address (answers go only there).
    `thread`: a mail answered (or bounced) mail the hub sent for that ticket: it quotes
    an unguessable Message-ID only that mail's recipients have seen.
    """

    kind: Literal["access_code", "owner", "thread"]
    ticket: str = Field(min_length=1, max_length=32)


class Extracted(_Frozen):
    """Structured facts found in the text: order and tracking numbers, phones, amounts."""

    order_numbers: tuple[str, ...] = ()
    # `carrier:number`, e.g. `SF:SF1234567890123`; `unknown:` when the format names no carrier.
    tracking_numbers: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    # Normalised decimal strings (`199.00`), money kept out of floats.
    amounts: tuple[str, ...] = ()


class Labels(_Frozen):
    """What the classifier found: category, priority, tags and why."""

    category: str
    priority: Priority = "normal"
    tags: tuple[str, ...] = ()
    confidence: float = 0.0
    matched: tuple[str, ...] = ()
    # Other categories that scored above the configured threshold, best first.
    secondary: tuple[str, ...] = ()
    priority_reasons: tuple[str, ...] = ()
    extracted: Extracted | None = None
    rules_version: str | None = None


class Reply(_Frozen):
    """The automatic answer the responder chose for this message."""

    kind: Literal["ack", "faq", "status", "none"]
    text: str
    lang: Literal["zh", "en"] = "zh"


class Route(_Frozen):
    """Where the router sent the ticket, with the reason for each step."""

    team: str
    assignee: str | None = None
    reasons: tuple[str, ...] = ()


class Envelope(_Frozen):
    """One inbound customer message, versioned and immutable."""

    id: UUID
    v: Literal[1] = 1
    channel: Channel
    source: str
    external_id: str = Field(min_length=1, max_length=255)
    ticket: str
    customer: CustomerRef
    text: str
    subject: str | None = None
    order_id: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    proof: Proof | None = None
    received_at: datetime
    reply_to: str | None = None
    # Set by a connector when the sender is a machine (auto-responder, bounce, list mail):
    # such a message becomes a ticket but never gets an automatic reply (loop guard).
    automatic: bool = False
    labels: Labels | None = None
    reply: Reply | None = None
    route: Route | None = None
