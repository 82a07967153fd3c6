"""Agents work a ticket: `POST .../replies` answers the customer, `POST .../status` moves it on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from intake_hub import ticketno
from intake_hub.api.auth import Authenticator
from intake_hub.jsonapi import (
    BadRequest,
    idempotency_key,
    json_response,
    key_reused,
    keyed_response,
    read_json,
)
from intake_hub.text import NonBlank
from intake_hub.tickets.errors import Conflict, KeyReused, NotAllowed
from intake_hub.tickets.views import Principal, ReplyOut, StatusOut


class ReplyIn(BaseModel):
    """An agent's answer to the customer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text: NonBlank = Field(min_length=1, max_length=10_000, description="What the customer reads")


class StatusIn(BaseModel):
    """The status a ticket moves to, and an optional note for the audit trail."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    status: Literal["in_progress", "resolved", "closed"] = Field(
        description="`received` is only ever set by intake"
    )
    note: str | None = Field(default=None, max_length=500, description="Why, for the audit trail")


# (number, text, idempotency key or None, caller) -> (reply, replayed); None: no such ticket.
Reply = Callable[[str, str, str | None, Principal], Awaitable[tuple[ReplyOut, bool] | None]]
# (number, status, note, caller) -> the change; None: no such ticket.
Move = Callable[[str, str, str | None, Principal], Awaitable[StatusOut | None]]

T = TypeVar("T")


@dataclass
class HandlingApi:
    """Reply and status routes; any agent token, checked against the ticket's team and owner."""

    auth: Authenticator
    reply: Reply
    move: Move

    def routes(self) -> list[web.RouteDef]:
        """The routes, mounted by the app."""
        return [
            web.post("/api/v1/tickets/{number}/replies", self.post_reply),
            web.post("/api/v1/tickets/{number}/status", self.post_status),
        ]

    async def post_reply(self, request: web.Request) -> web.Response:
        """`POST /api/v1/tickets/{number}/replies`: answer the customer; 201 with the message."""
        who = await self.auth.require(request)
        body = await read_json(request, ReplyIn)
        key = idempotency_key(request)
        # An unreadable number names no ticket: the store finds nothing for "".
        number = ticketno.normalize(request.match_info["number"]) or ""
        try:
            out, replayed = _found(await _refusals(self.reply(number, body.text, key, who)))
        except KeyReused:
            raise key_reused("text") from None
        return keyed_response(out, 201, replayed)

    async def post_status(self, request: web.Request) -> web.Response:
        """`POST /api/v1/tickets/{number}/status`: move the ticket on; the customer is told."""
        who = await self.auth.require(request)
        body = await read_json(request, StatusIn)
        number = ticketno.normalize(request.match_info["number"]) or ""
        moved = await _refusals(self.move(number, body.status, body.note, who))
        return json_response(_found(moved))


async def _refusals(call: Awaitable[T | None]) -> T | None:
    """Await a storage call, turning its refusals into 403 and 409 answers."""
    try:
        return await call
    except NotAllowed as exc:
        raise BadRequest(403, "forbidden", str(exc)) from None
    except Conflict:
        raise BadRequest(
            409, "conflict", "The ticket changed at the same moment; load it and retry."
        ) from None


def _found(done: T | None) -> T:
    if done is None:
        raise BadRequest(404, "not_found", "No ticket with this number.")
    return done
