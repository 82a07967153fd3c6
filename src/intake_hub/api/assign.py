"""Supervisors reassign a ticket by hand: `POST /api/v1/tickets/{number}/assign`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from intake_hub import ticketno
from intake_hub.api.auth import Authenticator
from intake_hub.jsonapi import BadRequest, json_response, read_json
from intake_hub.tickets.errors import UnknownAssignee
from intake_hub.tickets.views import AssignOut


class AssignIn(BaseModel):
    """Who takes the ticket now, and why (kept on the ticket's audit trail)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    assignee: str = Field(min_length=1, max_length=64, description="The agent's login")
    reason: str = Field(min_length=1, max_length=500, description="Why, for the audit trail")


# (number, assignee, reason, actor) -> the new assignment, None when the ticket is unknown.
Reassign = Callable[[str, str, str, str], Awaitable[AssignOut | None]]

ROLES = ("supervisor", "admin")


@dataclass
class AssignApi:
    """The manual assignment route; agents get 403, only supervisors and admins may."""

    auth: Authenticator
    reassign: Reassign

    def routes(self) -> list[web.RouteDef]:
        """The routes, mounted by the app."""
        return [web.post("/api/v1/tickets/{number}/assign", self.assign)]

    async def assign(self, request: web.Request) -> web.Response:
        """`POST /api/v1/tickets/{number}/assign`: give the ticket to another agent."""
        who = await self.auth.require(request, *ROLES)
        body = await read_json(request, AssignIn)
        number = ticketno.normalize(request.match_info["number"])
        try:
            done = (
                await self.reassign(number, body.assignee, body.reason, who.login)
                if number
                else None
            )
        except UnknownAssignee:
            raise BadRequest(422, "unknown_assignee", "No agent with this login.") from None
        if done is None:
            raise BadRequest(404, "not_found", "No ticket with this number.")
        return json_response(done)
