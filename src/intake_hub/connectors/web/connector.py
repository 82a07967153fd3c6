"""The web channel's HTTP side: form page, JSON intake and the customer status pages."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from intake_hub import ticketno
from intake_hub.access import Links, check_code
from intake_hub.connectors.web.normalize import to_envelope
from intake_hub.connectors.web.schemas import WebMessageAccepted, WebMessageIn
from intake_hub.ids import uuid7
from intake_hub.intake import Emit
from intake_hub.jsonapi import BadRequest, field_errors, json_response, read_json
from intake_hub.metrics import Metrics
from intake_hub.pages import render
from intake_hub.ticketno import TicketNumbers
from intake_hub.tickets.views import TicketStatus

StatusLookup = Callable[[str], Awaitable[TicketStatus | None]]


class WebConfig(BaseModel):
    """`connectors/web.yaml`: the instance name (used as the envelope source)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str = "web"
    name: str = "web"


@dataclass
class WebConnector:
    """Takes customer messages from the web form and the JSON API, and shows ticket status."""

    config: WebConfig
    emit: Emit
    numbers: TicketNumbers
    links: Links
    lookup: StatusLookup
    metrics: Metrics

    name = "web"

    def routes(self) -> list[web.RouteDef]:
        """The channel's routes, mounted by the app."""
        return [
            web.get("/", self.form_page),
            web.post("/", self.form_submit),
            web.post("/api/v1/web/messages", self.api_submit),
            web.get("/tickets/{number}", self.status_page),
            web.get("/api/v1/tickets/{number}/status", self.api_status),
        ]

    async def _accept(self, msg: WebMessageIn, started: float) -> WebMessageAccepted:
        number = self.numbers.next()
        env = to_envelope(
            msg,
            env_id=uuid7(),
            ticket=number,
            received_at=datetime.now(UTC),
            source=f"web/{self.config.name}",
        )
        await self.emit(env)
        self.metrics.intake_latency.labels("web").observe(time.perf_counter() - started)
        code = self.links.code(number)
        return WebMessageAccepted(
            ticket=number, access_code=code, status_url=self.links.status_url(number, code)
        )

    async def api_submit(self, request: web.Request) -> web.Response:
        """`POST /api/v1/web/messages`: 202 with the ticket number and access code."""
        started = time.perf_counter()
        msg = await read_json(request, WebMessageIn)
        return json_response(await self._accept(msg, started), 202)

    async def form_page(self, request: web.Request) -> web.Response:
        """`GET /`: the form, usable without JavaScript."""
        return render(request, "form.html", errors=[], values={})

    async def form_submit(self, request: web.Request) -> web.StreamResponse:
        """`POST /`: the no-JavaScript form post; redirects to the new ticket's status page."""
        started = time.perf_counter()
        form = await request.post()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        data = {k: v for k, v in values.items() if k in WebMessageIn.model_fields and v != ""}
        try:
            msg = WebMessageIn.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc)
            return render(request, "form.html", http_status=422, errors=errors, values=values)
        accepted = await self._accept(msg, started)
        lang = request.query.get("lang")
        suffix = f"&lang={lang}" if lang in ("zh", "en") else ""
        raise web.HTTPSeeOther(f"/tickets/{accepted.ticket}?code={accepted.access_code}{suffix}")

    async def _status(self, request: web.Request) -> TicketStatus | None:
        number = ticketno.normalize(request.match_info["number"])
        code = request.query.get("code", "")
        if number is None or not check_code(self.links.secret, number, code):
            return None
        found = await self.lookup(number)
        if found is not None:
            return found
        # A valid code proves we issued this number: the message is still on its way in.
        now = datetime.now(UTC)
        return TicketStatus(
            number=number,
            status="received",
            subject=None,
            created_at=now,
            updated_at=now,
            messages=[],
        )

    async def status_page(self, request: web.Request) -> web.Response:
        """`GET /tickets/{number}?code=`: status and conversation; 404 tells nothing more."""
        status = await self._status(request)
        if status is None:
            return render(request, "not_found.html", http_status=404)
        return render(
            request,
            "status.html",
            status=status,
            pretty=ticketno.pretty(status.number),
            code=self.links.code(status.number),
        )

    async def api_status(self, request: web.Request) -> web.Response:
        """`GET /api/v1/tickets/{number}/status?code=`: the status page as JSON."""
        status = await self._status(request)
        if status is None:
            raise BadRequest(404, "not_found", "No ticket with this number and code.")
        return json_response(status)
