"""What the ticket service shows: the read models agents and customers are given.

The HTTP API answers with these models as they are (its OpenAPI document is made from
them), so they are plain data with field descriptions and no HTTP knowledge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from intake_hub.envelope import Channel, Labels, Priority, Reply, Route
from intake_hub.status import Status

# How the customer gets an agent's words: on the status page always, and pushed on the
# ticket's own channel where its connector can (the channel's id then).
Via = Literal["status_page"] | Channel


@dataclass(frozen=True)
class Principal:
    """Who is calling: an agent login and their role."""

    login: str
    role: str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttachmentOut(_Model):
    """A file (or a link, a location) sent with a message."""

    id: str
    kind: str = Field(description="file, image, voice, video (WeChat), location, link")
    state: Literal["stored", "pending", "failed", "link"] = Field(
        description="pending: the channel's file is still being fetched; link: no file"
    )
    name: str | None = Field(description="For display only: sanitised, never a path")
    content_type: str | None = Field(description="Decided from the content, not the name")
    size: int | None = Field(description="Bytes")
    url: str | None = Field(description="Where to download it; None until it is stored")
    thumbnail_url: str | None = Field(default=None, description="A small preview, for images")
    ref: str | None = Field(default=None, description="A link's URL or a location's geo: URI")


class DeliveryOut(_Model):
    """How a reply is getting to the customer on their channel (agents only)."""

    channel: Channel
    status: Literal["waiting", "pending", "sending", "sent", "failed", "skipped", "bounced"] = (
        Field(description="waiting for its text, queued, being sent, or how it ended")
    )
    reason: str | None = Field(
        default=None, description="Why it failed or was skipped, or the last error retried"
    )
    sent_at: datetime | None = None


class MessageOut(_Model):
    """One message of a ticket's conversation."""

    direction: Literal["in", "out"]
    text: str
    channel: Channel
    at: datetime
    kind: str | None = Field(default=None, description="For automatic replies: ack, faq, status")
    attachments: list[AttachmentOut] = Field(default_factory=list)


class AgentMessageOut(MessageOut):
    """A message as agents see it: a pushed reply also says how far it got."""

    delivery: DeliveryOut | None = Field(
        default=None,
        description="A reply pushed to the customer's channel (WeChat, mail); none for one "
        "shown on the status page only",
    )


class CustomerOut(_Model):
    """The customer as agents see them."""

    id: str
    key: str | None = Field(
        default=None,
        description="How the ticket's channel names them: an app's user id (`app:u_1001`), "
        "a WeChat openid, the contact a web customer typed",
    )
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    vip: bool = False
    verified: bool = Field(
        default=True,
        description="False: the contact is what the sender typed (web form, email From), unchecked",
    )


class TicketSummary(_Model):
    """A ticket in a list."""

    number: str
    status: Status
    channel: Channel
    category: str | None
    priority: Priority
    tags: list[str]
    team: str | None
    assignee: str | None
    subject: str | None
    created_at: datetime
    updated_at: datetime


class TicketExplanation(_Model):
    """Why the ticket got its category, priority, reply and team (decided on its first message)."""

    rules_version: str | None = Field(description="Version of the rules in force at the time")
    labels: Labels | None = Field(
        description="Category, confidence, matched terms, secondary categories, priority and why"
    )
    reply: Reply | None = Field(description="The automatic reply chosen (kind `none`: why not)")
    route: Route | None = Field(description="Team and agent, with the reason for each step")


class TicketDetail(TicketSummary):
    """A ticket with its customer and whole conversation."""

    customer: CustomerOut
    order_id: str | None = None
    messages: list[AgentMessageOut]
    explanation: TicketExplanation | None = Field(
        default=None, description="Missing for tickets stored before explanations were kept"
    )


class TicketPage(_Model):
    """One page of tickets; pass `next` back as `cursor` for the following page."""

    items: list[TicketSummary]
    next: str | None


class TicketStatus(_Model):
    """What the customer may see of their ticket."""

    number: str
    status: Status
    subject: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[MessageOut]


class ReplyOut(BaseModel):
    """The reply as stored, and how it reaches the customer."""

    number: str
    status: Status
    assignee: str | None
    message: MessageOut
    delivery: Via


class StatusOut(BaseModel):
    """The ticket's status after the change."""

    number: str
    status: Status
    previous: Status
    notified: bool = Field(description="Whether a notice was queued to the customer's channel")


class AssignOut(BaseModel):
    """The ticket's assignment after the change."""

    number: str
    assignee: str
    previous: str | None
    team: str | None
