"""The aiohttp application: connectors, the agent API, operations endpoints and the pipeline."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiohttp import web

from intake_hub.access import Links
from intake_hub.api.admin import AdminApi, DeadLetters
from intake_hub.api.assign import AssignApi
from intake_hub.api.auth import Authenticator, Principal
from intake_hub.api.handling import HandlingApi
from intake_hub.api.openapi import openapi_document
from intake_hub.api.tickets import TicketApi, TicketQuery
from intake_hub.bus import Bus, BusError, MemoryBus, RabbitBus, RetryPolicy
from intake_hub.config import Settings
from intake_hub.connectors.registry import load_connectors
from intake_hub.connectors.web.connector import WebConfig, WebConnector
from intake_hub.connectors.wechat.config import WeChatConfig
from intake_hub.connectors.wechat.connector import WeChatConnector
from intake_hub.connectors.wechat.outbound import Dispatcher
from intake_hub.envelope import Envelope
from intake_hub.intake import Intake
from intake_hub.jsonapi import BadRequest, error_response
from intake_hub.metrics import Metrics
from intake_hub.pipeline import Pipeline
from intake_hub.rules import RuleSet, load_rules
from intake_hub.rules.reload import RulesReloader
from intake_hub.spool import Spool, Spooler, SpoolFull, spool_path
from intake_hub.stages import STAGE_NAMES, StageFn
from intake_hub.stages.classifier import classify
from intake_hub.stages.persist import persist
from intake_hub.stages.responder import (
    ReplyGuard,
    TicketLookup,
    open_tickets_text,
    respond,
    status_notice,
)
from intake_hub.stages.router import route
from intake_hub.status import OpenTicket
from intake_hub.storage import agents, assign, db, queries
from intake_hub.storage.handling import Handling
from intake_hub.storage.replies import DbReplyGuard, DbTicketLookup
from intake_hub.storage.roster import DbRoster
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import TicketNumbers
from intake_hub.tickets.views import TicketPage

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
READY = web.AppKey("ready", bool)
INTAKE = web.AppKey("intake", bool)

DRAIN_TIMEOUT_S = 60.0


@dataclass
class Services:
    """The running parts one instance owns, started and stopped with the app."""

    settings: Settings
    bus: Bus
    intake: Intake
    pipeline: Pipeline
    writer: TicketWriter
    rules: RuleSet
    links: Links
    numbers: TicketNumbers
    stages: StageSet
    reloader: RulesReloader | None = None


SERVICES = web.AppKey("services", Services)


class StageSet:
    """The stage functions bound to their rules and resources; rules can be swapped live."""

    def __init__(
        self,
        rules: RuleSet,
        links: Links,
        roster: DbRoster,
        writer: TicketWriter,
        metrics: Metrics,
        lookup: TicketLookup | None = None,
        guard: ReplyGuard | None = None,
    ) -> None:
        self.rules = rules
        self._links = links
        self._roster = roster
        self._lookup = lookup or DbTicketLookup()
        self._guard = guard or DbReplyGuard()
        self._writer = writer
        self._metrics = metrics

    def tickets_text(self, tickets: Sequence[OpenTicket]) -> str | None:
        """Open tickets as the current reply rules word them, in their default language."""
        replies = self.rules.replies
        return open_tickets_text(tickets, replies, self._links, replies.default_lang)

    def notice(self, number: str, status: str, first_text: str) -> str | None:
        """The customer's notice of a status change, from the current reply rules."""
        return status_notice(self.rules.replies, self._links, number, status, first_text)

    async def classify(self, env: Envelope) -> Envelope:
        """Label the message from the current classifier rules."""
        return await classify(env, self.rules.classifier, self.rules.version)

    async def respond(self, env: Envelope) -> Envelope:
        """Choose the automatic reply."""
        return await respond(
            env,
            self.rules.replies,
            self._links,
            faq=self.rules.faq,
            tickets=self._lookup,
            guard=self._guard,
        )

    async def route(self, env: Envelope) -> Envelope:
        """Pick the team and agent."""
        return await route(env, self.rules.routing, self._roster)

    async def persist(self, env: Envelope) -> Envelope:
        """Store the ticket; count it once, however often it is redelivered."""
        saved = await persist(env, self._writer)
        if not saved.duplicate:
            self._metrics.stored.labels(env.channel).inc()
            lag = (datetime.now(UTC) - env.received_at).total_seconds()
            self._metrics.end_to_end.labels(env.channel).observe(lag)
        return env

    def functions(self) -> dict[str, StageFn]:
        """The stage functions by stage name, each waiting out a database outage."""
        return {name: _patient(getattr(self, name)) for name in STAGE_NAMES}


def _patient(stage: StageFn) -> StageFn:
    # Any stage may read the database (roster, reply cap, ticket lookup); an outage must
    # hold its message unacked, not spend the bus's retries and park it as poison.
    async def run(env: Envelope) -> Envelope | None:
        return await db.patiently(lambda: stage(env))

    return run


def make_bus(settings: Settings) -> Bus:
    """The bus the settings ask for: RabbitMQ when `AMQP_URL` is set, else in-process."""
    if settings.amqp_url:
        return RabbitBus(settings.amqp_url, prefetch=settings.concurrency)
    return MemoryBus()


def _add_spool(s: Services, metrics: Metrics) -> None:
    """Put a durable spool behind `Intake.emit` of an instance publishing to RabbitMQ."""
    bus = s.bus
    if not isinstance(bus, RabbitBus):
        return
    spool = Spool(spool_path(s.settings.home, s.numbers.node), s.settings.spool_max)
    s.intake.spooler = Spooler(bus, spool, lambda: bus.connected)
    metrics.spool_depth.set_function(lambda: spool.depth)


def build_services(settings: Settings, metrics: Metrics, run: Collection[str]) -> Services:
    """Everything one instance runs, built but not started (no network or database yet)."""
    rules = load_rules(settings.rules_dir)
    bus = make_bus(settings)
    writer = TicketWriter(
        batch_size=settings.batch_size, followup_window=settings.followup_window_s
    )
    links = Links(settings.public_url, settings.resolved_secret())
    stages = StageSet(rules, links, DbRoster(), writer, metrics)
    intake = Intake(bus, lambda env: metrics.received.labels(env.channel).inc())
    pipeline = Pipeline(
        bus,
        stages.functions(),
        run=run,
        retry=RetryPolicy(settings.retry_delays),
        prefetch=settings.concurrency,
        metrics=metrics,
    )
    numbers = TicketNumbers.for_home(settings.home, settings.node_id)
    reloader = RulesReloader(settings.rules_dir, stages)
    return Services(
        settings, bus, intake, pipeline, writer, rules, links, numbers, stages, reloader
    )


async def _link(app: web.Application, s: Services) -> None:
    """Connect to the bus, listen for replies (with intake), declare the topology, consume."""
    await s.bus.start()
    if app[INTAKE]:
        await s.intake.start()
    await s.pipeline.start()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[SERVICES]
    await db.open_db(s.settings.database_url)
    try:
        await agents.sync_teams({k: t.name for k, t in s.rules.routing.teams.items()})
        spooler = s.intake.spooler if app[INTAKE] else None
        if spooler is None:
            await _link(app, s)
        else:
            # A spooling instance starts even while the broker is away and links up later.
            await spooler.start(lambda: _link(app, s), s.bus.close)
        if s.reloader is not None:
            await s.reloader.start()
        app[READY] = True
        log.info("intake-hub ready: rules %s, node %s", s.rules.version, s.bus.node)
        yield
        if app[INTAKE]:
            # HTTP has stopped taking requests by now: finish everything that was answered 202.
            if not await s.bus.drain(DRAIN_TIMEOUT_S):
                log.error("shutdown: messages still queued after %.0fs", DRAIN_TIMEOUT_S)
        elif isinstance(s.bus, RabbitBus):
            # A worker shares durable queues with others: finish what it holds, leave the rest.
            await s.bus.finish(DRAIN_TIMEOUT_S)
        await s.pipeline.stop()
        await s.intake.close()
    finally:
        if s.reloader is not None:
            await s.reloader.stop()
        await s.bus.close()
        await s.writer.close()
        s.numbers.close()
        await db.close_db()


def _mount(app: web.Application, s: Services, metrics: Metrics) -> None:
    senders: list[str] = []
    for config in load_connectors(s.settings.connectors_dir):
        if isinstance(config, WebConfig):
            web_channel = WebConnector(
                config, s.intake.emit, s.numbers, s.links, queries.ticket_status, metrics
            )
            app.router.add_routes(web_channel.routes())
        elif isinstance(config, WeChatConfig):
            if not config.configured:
                log.info("wechat/%s: no token configured, channel not mounted", config.name)
                continue
            wechat = WeChatConnector(
                config, s.intake.request, s.numbers, metrics, s.stages.tickets_text
            )
            app.router.add_routes(wechat.routes())
            app.on_startup.append(wechat.start)
            app.on_shutdown.append(wechat.stop)
            if config.can_send:
                # Starts after the database opens, stops before it closes (aiohttp's order).
                sender = Dispatcher(config)
                senders.append(config.name)
                app.on_startup.append(sender.start)
                app.on_shutdown.append(sender.stop)
    auth = Authenticator(s.settings.admin_token, _agent_lookup)
    ticket_api = TicketApi(auth, _list_tickets, queries.get_ticket)
    app.router.add_routes(ticket_api.routes())
    app.router.add_routes(AssignApi(auth, assign.reassign).routes())
    handling = Handling(s.stages.notice, tuple(senders))
    app.router.add_routes(HandlingApi(auth, handling.reply, handling.move).routes())
    app.router.add_routes(AdminApi(auth, DeadLetters(s.bus)).routes())


async def _agent_lookup(token: str) -> Principal | None:
    info = await agents.authenticate(token)
    return Principal(login=info.login, role=info.role) if info else None


async def _list_tickets(q: TicketQuery) -> TicketPage:
    return await queries.list_tickets(
        status=q.status,
        category=q.category,
        channel=q.channel,
        assignee=q.assignee,
        limit=q.limit,
        cursor=q.cursor,
    )


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error is a JSON answer on the API, and no exception ever becomes a bare 500."""
    try:
        return await handler(request)
    except BadRequest:
        raise
    except SpoolFull as exc:
        return error_response(
            503,
            "spool_full",
            "We cannot take messages right now; please try again shortly.",
            headers={"Retry-After": str(exc.retry_after)},
        )
    except BusError as exc:
        # The broker is away (a gateway spooling, or not yet connected): try again later.
        log.warning("bus unavailable on %s %s: %r", request.method, request.path, exc)
        return error_response(
            503,
            "bus_unavailable",
            "The message broker cannot be reached right now; please try again shortly.",
            headers={"Retry-After": "5"},
        )
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too_large", "The body is larger than the limit.")
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "Something went wrong on our side.")


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the database answers and the pipeline runs; otherwise 503 naming what is not.

    A gateway spooling while the broker is away stays 200 (it still takes messages safely)
    but names the broker and the spool depth; a full spool is 503.
    """
    degraded: dict[str, str | int] = {}
    if not request.app.get(READY):
        degraded["pipeline"] = "not running"
    try:
        await db.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        degraded["database"] = type(exc).__name__
    status = 503 if degraded else 200
    spooler = request.app[SERVICES].intake.spooler
    if spooler is not None and (spooler.spool.depth or not spooler.broker_up):
        degraded["broker"] = "connected" if spooler.broker_up else "unreachable"
        degraded["spool"] = spooler.spool.depth
        if spooler.spool.full:
            status = 503
    body = {"status": "degraded" if degraded else "ok", "degraded": degraded}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus text exposition; queue depths are read from the bus now, once per scrape."""
    s = request.app[SERVICES]
    await request.app[METRICS].sample_queues(s.bus.depth, s.pipeline.queues)
    return web.Response(
        body=request.app[METRICS].render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi_view(request: web.Request) -> web.Response:
    """The OpenAPI document."""
    return web.Response(body=orjson.dumps(openapi_document()), content_type="application/json")


def create_app(
    settings: Settings, run: Collection[str] = STAGE_NAMES, *, intake: bool = True
) -> web.Application:
    """The service: the stages in `run` on one bus, plus HTTP intake and the API if `intake`.

    `serve` is everything; a gateway is `run=()`; a worker is `intake=False`, which leaves
    only the operations endpoints (`/healthz`, `/readyz`, `/metrics`) on HTTP.
    """
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    metrics = Metrics()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[INTAKE] = intake
    app[SERVICES] = services = build_services(settings, metrics, run)
    if intake:
        _add_spool(services, metrics)
        _mount(app, services, metrics)
        app.router.add_get("/api/openapi.json", openapi_view)
        app.router.add_static("/static", Path(__file__).parent / "static")
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.cleanup_ctx.append(_lifecycle)
    return app
