"""Helpers for tests, here and in projects building on intake-hub: envelope builders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from intake_hub.envelope import Channel, CustomerRef, Envelope
from intake_hub.ids import uuid7
from intake_hub.ticketno import TicketNumbers

_numbers = TicketNumbers(node=1023)


def make_envelope(
    text: str = "尺码不对，想换大一码，订单号 4102938475610",
    *,
    channel: Channel = "web",
    customer: str = "alice@example.com",
    **fields: Any,
) -> Envelope:
    """A fresh inbound envelope with realistic defaults; override any field by keyword."""
    env_id = fields.pop("id", uuid7())
    values: dict[str, Any] = {
        "id": env_id,
        "channel": channel,
        "source": f"{channel}/{channel}",
        "external_id": str(env_id),
        "ticket": _numbers.next(),
        "customer": CustomerRef(key=customer, name="Alice"),
        "text": text,
        "received_at": datetime.now(UTC),
    }
    values.update(fields)
    return Envelope(**values)
