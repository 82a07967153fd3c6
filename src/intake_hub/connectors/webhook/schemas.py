"""What an app backend posts (one model per event type) and what it gets back."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from intake_hub.text import NonBlank

# `<instance>:<id>` must fit a customer key (200), whatever the instance name (56).
MAX_CUSTOMER_ID = 128
# An attachment row keeps the URL it fetches in 500 characters.
MAX_URL = 500
# Validation context key: the instance accepts `http://` attachment URLs (tests on loopback).
ALLOW_HTTP = "allow_http"
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCustomer(_Model):
    """The app's own user, vouched for by the app's signature."""

    id: str = Field(
        min_length=1,
        max_length=MAX_CUSTOMER_ID,
        pattern=r"^[\x21-\x7e]+$",
        description="The user's id in the app (printable ASCII, no spaces)",
    )
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    tags: list[Tag] | None = Field(
        default=None, max_length=20, description="Tags the merchant keeps, e.g. `vip`"
    )


class AppAttachment(_Model):
    """A file the app holds: fetched from an allowed host, otherwise shown as a link."""

    url: AnyHttpUrl = Field(description="https link to the file, up to 500 characters")
    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    size: int = Field(ge=0, le=2**31 - 1, description="Bytes")

    @field_validator("url")
    @classmethod
    def _https(cls, url: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
        allow_http = bool(info.context and info.context.get(ALLOW_HTTP))
        if url.scheme != "https" and not allow_http:
            raise ValueError("must be an https:// URL")
        if len(str(url)) > MAX_URL:
            raise ValueError(f"longer than {MAX_URL} characters")
        return url


class MessageData(_Model):
    """A customer's message in the app."""

    customer: AppCustomer
    text: NonBlank = Field(min_length=1, max_length=10_000)
    order_id: str | None = Field(default=None, max_length=64)
    attachments: list[AppAttachment] = Field(default_factory=list, max_length=10)
    ticket: str | None = Field(
        default=None,
        max_length=20,
        description="Add to this ticket: only one of the same customer's, else 422",
    )


class MessageCreated(_Model):
    """`message.created`: a customer wrote; a new ticket or a follow-up."""

    type: Literal["message.created"]
    timestamp: str | None = Field(default=None, max_length=40)
    data: MessageData


class CustomerData(_Model):
    """A customer's profile as the app knows it now."""

    customer: AppCustomer


class CustomerUpdated(_Model):
    """`customer.updated`: the app's user changed name, phone, email or tags (`vip`)."""

    type: Literal["customer.updated"]
    timestamp: str | None = Field(default=None, max_length=40)
    data: CustomerData


EVENTS: dict[str, type[MessageCreated] | type[CustomerUpdated]] = {
    "message.created": MessageCreated,
    "customer.updated": CustomerUpdated,
}


class MessageAccepted(_Model):
    """The ticket the message made or joined, and its status page."""

    ticket: str
    status_url: str


class CustomerAccepted(_Model):
    """The app's customer id whose profile was recorded."""

    customer: str


Kind = Literal["message.created", "customer.updated"]
