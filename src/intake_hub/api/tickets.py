"""The agent read API: ticket lists with filters and cursor paging, and one ticket whole.

Both pass the caller to the ticket service, which shows only the tickets they may read;
one they may not read answers 404 exactly like an unknown number."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from intake_hub import ticketno
from intake_hub.api.auth import Authenticator
from intake_hub.envelope import Channel
from intake_hub.jsonapi import BadRequest, json_response, validate
from intake_hub.status import Status
from intake_hub.tickets.views import Principal, TicketDetail, TicketPage


class TicketQuery(BaseModel):
    """Filters and paging of `GET /api/v1/tickets`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    status: Status | None = None
    category: str | None = Field(default=None, max_length=32)
    channel: Channel | None = None
    assignee: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


# (filters, caller) -> the page of tickets the caller may read.
ListTickets = Callable[[TicketQuery, Principal], Awaitable[TicketPage]]
# (number, caller) -> the ticket; None when missing or not the caller's to read.
GetTicket = Callable[[str, Principal], Awaitable[TicketDetail | None]]


@dataclass
class TicketApi:
    """Routes for agents; every one needs a bearer token and shows only what it may read."""

    auth: Authenticator
    list_tickets: ListTickets
    get_ticket: GetTicket

    def routes(self) -> list[web.RouteDef]:
        """The routes, mounted by the app."""
        return [
            web.get("/api/v1/tickets", self.list),
            web.get("/api/v1/tickets/{number}", self.detail),
        ]

    async def list(self, request: web.Request) -> web.Response:
        """`GET /api/v1/tickets`: newest first; pass `next` back as `cursor`."""
        who = await self.auth.require(request)
        query = validate(TicketQuery, dict(request.query))
        try:
            page = await self.list_tickets(query, who)
        except ValueError:
            raise BadRequest(422, "invalid_fields", "The cursor is not valid.") from None
        return json_response(page)

    async def detail(self, request: web.Request) -> web.Response:
        """`GET /api/v1/tickets/{number}`: the ticket, its customer and conversation."""
        who = await self.auth.require(request)
        number = ticketno.normalize(request.match_info["number"])
        found = await self.get_ticket(number, who) if number else None
        if found is None:
            raise BadRequest(404, "not_found", "No ticket with this number.")
        return json_response(found)
