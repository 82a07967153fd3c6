"""What the web channel takes in and answers: the form's message and the customer's keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from intake_hub.text import NonBlank, clean


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


class CustomerReplyIn(_Model):
    """The customer's next message on their ticket, proven by its access code."""

    code: str = Field(min_length=1, max_length=64, description="The ticket's access code")
    text: NonBlank = Field(min_length=1, max_length=10_000, description="The message itself")


class CustomerReplyAccepted(_Model):
    """The ticket the message joined, and where its conversation is shown."""

    ticket: str
    status_url: str
