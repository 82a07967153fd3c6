"""The outbound port: how generic ticket code hands words to the customer's own channel.

A connector that can push (WeChat's customer-service API, mail, an app's callback) offers
an `Outbound`; the ticket service asks the one serving the ticket's source. It never names
a channel, and a channel without one leaves its customers the status page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from intake_hub.envelope import Channel


@dataclass(frozen=True, slots=True)
class Delivery:
    """Words for one ticket's customer, sent at most once per `key`."""

    key: str  # unique per delivery: `agent:<message id>`, `status:<event id>`, `reply:<env id>`
    ticket_id: UUID
    number: str
    source: str  # the connector instance the ticket came through, e.g. `wechat/wechat`
    customer_key: str  # who on that channel (an openid, an address)
    text: str
    ticket_updated_at: datetime
    at: datetime


class Outbound(Protocol):
    """One connector instance's way out, queued in the caller's transaction."""

    channel: Channel

    async def enqueue(self, delivery: Delivery) -> None:
        """Queue `delivery` in the current transaction; the connector sends it at most once."""

    async def queued(self, key: str) -> bool:
        """Whether a delivery with `key` was queued (a retried request answers the same)."""
