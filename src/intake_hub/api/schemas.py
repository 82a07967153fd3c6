"""Request and response models of the HTTP API; the OpenAPI document is made from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from intake_hub.envelope import Channel, Labels, Priority, Reply, Route
from intake_hub.status import Status
from intake_hub.text import clean


def _not_blank(value: str) -> str:
    value = clean(value)
    if not value:
        raise ValueError("must not be blank")
    return value


# Text a person typed: control characters and surrounding space removed, never empty.
NonBlank = Annotated[str, AfterValidator(_not_blank)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebMessageIn(_Model):
    """A customer's message from the web form."""

    name: NonBlank = Field(min_length=1, max_length=100, description="How to address the customer")
    contact: NonBlank = Field(
        min_length=3, max_length=200, description="Email address or phone number to reach them"
    )
    text: NonBlank = Field(min_length=1, max_length=10_000, description="The message itself")
    subject: str | None = Field(default=None, max_length=200)
    order_id: str | None = Field(default=None, max_length=64)

    @field_validator("subject", "order_id")
    @classmethod
    def _optional(cls, value: str | None) -> str | None:
        return clean(value) or None if value is not None else None


class WebMessageAccepted(_Model):
    """What the customer keeps: the ticket number and the code that opens its status."""

    ticket: str
    access_code: str
    status_url: str


class MessageOut(_Model):
    """One message of a ticket's conversation."""

    direction: Literal["in", "out"]
    text: str
    channel: Channel
    at: datetime
    kind: str | None = Field(default=None, description="For automatic replies: ack, faq, status")


class CustomerOut(_Model):
    """The customer as agents see them."""

    id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    vip: bool = False


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
    messages: list[MessageOut]
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


class FieldError(_Model):
    """One problem with one field of a request."""

    field: str
    message: str


class ErrorOut(_Model):
    """Every 4xx answer has this shape."""

    error: str
    message: str
    fields: list[FieldError] = []
