"""What travels on the broker: persistent JSON messages and the headers the bus reads back."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika import DeliveryMode

ATTEMPTS = "x-intake-attempts"
ERROR = "x-intake-error"
DEAD_ID = "x-intake-dead-id"
DEAD_AT = "x-intake-dead-at"

ERROR_MAX_CHARS = 2000


def message(body: bytes, message_id: str | None, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent JSON message."""
    return aio_pika.Message(
        body,
        delivery_mode=DeliveryMode.PERSISTENT,
        content_type="application/json",
        message_id=message_id,
        headers=headers,
    )


def truncate(text: str) -> str:
    """`text` cut to what a header should carry."""
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def int_header(headers: dict[str, Any], key: str) -> int:
    """A numeric header, 0 when absent or not a number."""
    value = headers.get(key)
    return int(value) if isinstance(value, int | float) else 0


def str_header(headers: dict[str, Any], key: str) -> str | None:
    """A text header (the broker may hand it over as bytes), None when absent."""
    value = headers.get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None
