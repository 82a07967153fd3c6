"""Operations endpoints (health, readiness, metrics, the OpenAPI document) and the error
middleware that keeps every failure a JSON answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from intake_hub.api.peers import Peers
from intake_hub.attachments import StoreUnavailable
from intake_hub.bus import BusError
from intake_hub.jsonapi import BadRequest, error_response
from intake_hub.metrics import Metrics, merge_expositions
from intake_hub.runtime.services import Services
from intake_hub.runtime.spool import SpoolFull
from intake_hub.storage import db

log = logging.getLogger(__name__)

METRICS = web.AppKey("metrics", Metrics)
READY = web.AppKey("ready", bool)
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", bytes)
# The other processes of this `serve`, when it runs several.
PEERS = web.AppKey("peers", Peers)


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
    except StoreUnavailable:
        log.exception("attachment store unavailable on %s %s", request.method, request.path)
        return error_response(
            503,
            "store_unavailable",
            "Files cannot be kept right now; please try again shortly.",
            headers={"Retry-After": "30"},
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
    """Prometheus text exposition; queue depths are read from the bus now, once per scrape.

    Under a `serve` of several processes, the answer adds up every process's figures;
    `?scope=process` gives this process's own (what the others ask each other for).
    """
    s = request.app[SERVICES]
    await request.app[METRICS].sample_queues(s.bus.depth, s.pipeline.queues)
    body = request.app[METRICS].render()
    peers = request.app.get(PEERS)
    if peers is not None and request.query.get("scope") != "process":
        body = merge_expositions([body, *await peers.get("/metrics?scope=process")])
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def openapi_view(request: web.Request) -> web.Response:
    """The OpenAPI document, made once when the app was built."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def mount_operations(app: web.Application) -> None:
    """The operator's routes, served by every role."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
