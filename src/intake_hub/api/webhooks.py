"""The delivery log of events to app backends, and manual redelivery (role admin)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from intake_hub import ticketno
from intake_hub.api.auth import Authenticator
from intake_hub.jsonapi import BadRequest, json_response, validate
from intake_hub.storage.models import AppEvent

EventStatus = Literal["pending", "delivered", "dead"]


class AppEventOut(BaseModel):
    """One event for an app and how its delivery went."""

    model_config = ConfigDict(extra="forbid")
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt")
    source: str = Field(description="The app's webhook instance, `webhook/<name>`")
    ticket: str
    type: str = Field(description="ticket.created, ticket.replied, ...")
    status: EventStatus
    attempts: int = Field(description="Posts tried so far")
    last_status: int | None = Field(description="The HTTP status of the last attempt")
    last_error: str | None
    last_latency_ms: int | None
    next_at: datetime | None = Field(description="When it is tried next (pending only)")
    created_at: datetime
    delivered_at: datetime | None


class AppEventPage(BaseModel):
    """Events newest first."""

    model_config = ConfigDict(extra="forbid")
    items: list[AppEventOut]


class AppEventQuery(BaseModel):
    """Filter of `GET /api/v1/admin/webhooks/events`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    status: EventStatus | None = None
    ticket: str | None = Field(default=None, max_length=20, description="A ticket number")
    limit: int = Field(default=100, ge=1, le=1000)


class RedeliverOut(BaseModel):
    """The event, back in the queue and due now."""

    model_config = ConfigDict(extra="forbid")
    webhook_id: str
    status: EventStatus


def describe(row: AppEvent) -> AppEventOut:
    """The log's view of one outbox row."""
    return AppEventOut(
        webhook_id=row.webhook_id,
        source=row.source,
        ticket=row.number,
        type=row.type,
        status=row.status,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        last_latency_ms=row.last_latency_ms,
        next_at=row.next_at if row.status == "pending" else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


# (status, ticket number, limit) -> rows newest first
ListEvents = Callable[[str | None, str | None, int], Awaitable[list[AppEvent]]]
# (webhook ids, now) -> the ids found and put back
Redeliver = Callable[[list[str], datetime], Awaitable[list[str]]]


@dataclass
class WebhooksApi:
    """The delivery log and redelivery; every route needs the role admin."""

    auth: Authenticator
    events: ListEvents
    redeliver_ids: Redeliver

    def routes(self) -> list[web.RouteDef]:
        """The routes, mounted by the app."""
        return [
            web.get("/api/v1/admin/webhooks/events", self.list),
            web.post("/api/v1/admin/webhooks/events/{webhook_id}/redeliver", self.redeliver),
        ]

    async def list(self, request: web.Request) -> web.Response:
        """`GET /api/v1/admin/webhooks/events?status=&ticket=`: attempts, codes, next try."""
        await self.auth.require(request, "admin")
        query = validate(AppEventQuery, {k: v for k, v in request.query.items() if v})
        number = ticketno.normalize(query.ticket) if query.ticket else None
        if query.ticket and not number:
            return json_response(AppEventPage(items=[]))
        rows = await self.events(query.status, number, query.limit)
        return json_response(AppEventPage(items=[describe(r) for r in rows]))

    async def redeliver(self, request: web.Request) -> web.Response:
        """`POST /api/v1/admin/webhooks/events/{webhook_id}/redeliver`: send it again."""
        await self.auth.require(request, "admin")
        webhook_id = request.match_info["webhook_id"]
        if not await self.redeliver_ids([webhook_id], datetime.now(UTC)):
            raise BadRequest(404, "not_found", "No event with this webhook id.")
        return json_response(RedeliverOut(webhook_id=webhook_id, status="pending"))
