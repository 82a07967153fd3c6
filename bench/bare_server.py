"""The ceiling: a bare aiohttp app that only parses the JSON body and answers 202.

Same stack as `intake-hub serve` (aiohttp on uvloop, orjson, no access log, one process),
minus everything the service does: no validation, no ticket number, no bus, no stages.

    .venv/bin/python bench/bare_server.py --port 8090
"""

from __future__ import annotations

import argparse
import itertools

import orjson
from aiohttp import web

_counter = itertools.count(1)


async def accept(request: web.Request) -> web.Response:
    """Parse the body with orjson and answer 202 with a small JSON, as the service does."""
    data = orjson.loads(await request.read())
    if not isinstance(data, dict):
        return web.Response(
            status=422, body=b'{"error":"invalid_fields"}', content_type="application/json"
        )
    n = next(_counter)
    body = orjson.dumps(
        {
            "ticket": f"W{n:010d}",
            "access_code": "bare",
            "status_url": f"http://127.0.0.1/tickets/W{n:010d}?code=bare",
        }
    )
    return web.Response(status=202, body=body, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def make_app() -> web.Application:
    """The bare app with the service's intake path."""
    app = web.Application()
    app.router.add_post("/api/v1/web/messages", accept)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    """Run on uvloop, like the service."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the service falls back the same way
        uvloop = None
    if uvloop is not None:
        uvloop.install()
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
