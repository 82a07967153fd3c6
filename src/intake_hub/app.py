"""The composition root: builds one instance's services, mounts every connector in one
loop, the agent and admin API and the operations endpoints, and runs their lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from uuid import UUID

import orjson
from aiohttp import web

from intake_hub.api.admin import AdminApi, DeadLetters
from intake_hub.api.assign import AssignApi
from intake_hub.api.attachments import AttachmentApi
from intake_hub.api.auth import Authenticator
from intake_hub.api.handling import HandlingApi
from intake_hub.api.openapi import openapi_document
from intake_hub.api.ops import (
    METRICS,
    OPENAPI,
    READY,
    SERVICES,
    errors_middleware,
    mount_operations,
    openapi_view,
)
from intake_hub.api.tickets import TicketApi, TicketQuery
from intake_hub.api.webhooks import WebhooksApi
from intake_hub.config import Settings
from intake_hub.connectors.base import Connector, Core
from intake_hub.connectors.registry import REGISTRY, load_connectors
from intake_hub.jsonapi import ApiDoc
from intake_hub.metrics import Metrics
from intake_hub.periodic import Periodic
from intake_hub.ratelimit import Buckets
from intake_hub.runtime.backlog import Backlog
from intake_hub.runtime.services import Services, add_spool, build_services
from intake_hub.stages import STAGE_NAMES
from intake_hub.storage import agents, app_events, db
from intake_hub.tickets import attachments, read
from intake_hub.tickets.assign import reassign
from intake_hub.tickets.attachments import AttachmentFile
from intake_hub.tickets.handling import Handling
from intake_hub.tickets.outbound import Outbound
from intake_hub.tickets.views import Principal, TicketPage
from intake_hub.webguard import ClientAddress, secure_headers

__all__ = ["METRICS", "OUTBOUND", "READY", "SERVICES", "create_app"]

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
INTAKE = web.AppKey("intake", bool)
# The connectors' ways out to their customers, by source (`wechat/<name>`).
OUTBOUND = web.AppKey("outbound", dict[str, Outbound])

DRAIN_TIMEOUT_S = 60.0
SWEEP_EVERY_S = 6 * 3600.0


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
        sweeper = Periodic(
            "attachment sweep", SWEEP_EVERY_S, lambda: attachments.sweep_orphans(s.files)
        )
        if app[INTAKE]:
            sweeper.start()
        app[READY] = True
        log.info("intake-hub ready: rules %s, node %s", s.rules.version, s.bus.node)
        yield
        if app[INTAKE]:
            # HTTP has stopped taking requests by now: finish everything that was answered 202.
            if not await s.bus.drain(DRAIN_TIMEOUT_S):
                log.error("shutdown: messages still queued after %.0fs", DRAIN_TIMEOUT_S)
        else:
            # A worker may share durable queues with others: finish what it holds only.
            await s.bus.finish(DRAIN_TIMEOUT_S)
        await sweeper.stop()
        await s.pipeline.stop()
        await s.intake.close()
    finally:
        if s.reloader is not None:
            await s.reloader.stop()
        await s.bus.close()
        await s.writer.close()
        await s.files.close()
        s.numbers.close()
        await db.close_db()


def _lend(s: Services, metrics: Metrics, backlog: Backlog) -> Core:
    """The part of the core connectors may use."""
    settings = s.settings
    limits = Buckets(settings.home / "ratelimit.buckets") if settings.rate_limits else None

    async def ticket_file(number: str, attachment_id: UUID, thumb: bool) -> AttachmentFile | None:
        return await attachments.for_customer(s.files, number, attachment_id, thumb=thumb)

    return Core(
        emit=s.intake.emit,
        request=s.intake.request,
        numbers=s.numbers,
        links=s.links,
        metrics=metrics,
        status=read.ticket_status,
        tickets_text=s.stages.tickets_text,
        limits=limits,
        client=ClientAddress(settings.trusted_proxies),
        backlog=backlog,
        files=s.files,
        file=ticket_file,
    )


def _run(connector: Connector, app: web.Application) -> None:
    # on_startup runs after cleanup_ctx opened the database; on_shutdown before it closes.
    async def start(_app: web.Application) -> None:
        await connector.start()

    async def stop(_app: web.Application) -> None:
        await connector.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


def _guard(app: web.Application, backlog: Backlog, limits: Buckets | None) -> None:
    async def start(_app: web.Application) -> None:
        backlog.start()

    async def stop(_app: web.Application) -> None:
        await backlog.stop()
        if limits is not None:
            limits.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


def _mount_connectors(
    app: web.Application, s: Services, metrics: Metrics
) -> tuple[dict[str, Outbound], list[ApiDoc]]:
    """Every configured channel instance, one loop; returns their ways out and API docs."""
    backlog = Backlog(s.bus, s.pipeline.queues)
    core = _lend(s, metrics, backlog)
    _guard(app, backlog, core.limits)
    outbound: dict[str, Outbound] = {}
    docs: list[ApiDoc] = []
    for config in load_connectors(s.settings.connectors_dir):
        if not config.enabled:
            log.info("%s/%s: not configured, channel not mounted", config.type, config.name)
            continue
        connector = REGISTRY[config.type].create(config, core)
        app.router.add_routes(connector.routes())
        _run(connector, app)
        if (way_out := connector.outbound) is not None:
            outbound[connector.source] = way_out
        if (doc := connector.openapi()) is not None:
            docs.append(doc)
    return outbound, docs


def _mount_api(app: web.Application, s: Services, outbound: dict[str, Outbound]) -> None:
    """The agent and admin API on the ticket service."""
    auth = Authenticator(s.settings.admin_token, _agent_lookup)
    app.router.add_routes(TicketApi(auth, _list_tickets, read.get_ticket).routes())
    app.router.add_routes(AssignApi(auth, reassign).routes())
    app.router.add_routes(AttachmentApi(auth, s.files).routes())
    handling = Handling(s.stages.notice, outbound)
    app.router.add_routes(HandlingApi(auth, handling.reply, handling.move).routes())
    app.router.add_routes(AdminApi(auth, DeadLetters(s.bus)).routes())
    app.router.add_routes(WebhooksApi(auth, app_events.listing, app_events.redeliver).routes())


async def _agent_lookup(token: str) -> Principal | None:
    info = await agents.authenticate(token)
    return Principal(login=info.login, role=info.role) if info else None


async def _list_tickets(q: TicketQuery, who: Principal) -> TicketPage:
    return await read.list_tickets(
        status=q.status,
        category=q.category,
        channel=q.channel,
        assignee=q.assignee,
        limit=q.limit,
        cursor=q.cursor,
        who=who,
    )


def create_app(
    settings: Settings, run: Collection[str] = STAGE_NAMES, *, intake: bool = True
) -> web.Application:
    """The service: the stages in `run` on one bus, plus HTTP intake and the API if `intake`.

    `serve` is everything; a gateway is `run=()`; a worker is `intake=False`, which leaves
    only the operations endpoints (`/healthz`, `/readyz`, `/metrics`) on HTTP.
    """
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_middleware])
    metrics = Metrics()
    app.on_response_prepare.append(secure_headers)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[INTAKE] = intake
    app[SERVICES] = services = build_services(settings, metrics, run)
    if intake:
        add_spool(services, metrics)
        app[OUTBOUND], docs = _mount_connectors(app, services, metrics)
        _mount_api(app, services, app[OUTBOUND])
        app[OPENAPI] = orjson.dumps(openapi_document(docs))
        app.router.add_get("/api/openapi.json", openapi_view)
        app.router.add_static("/static", Path(__file__).parent / "static")
    mount_operations(app)
    app.cleanup_ctx.append(_lifecycle)
    return app
