"""serve, gateway and worker: the commands that run the service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from intake_hub.config import ConfigError, Settings
from intake_hub.stages import STAGE_NAMES

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("intake_hub")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run everything: HTTP intake, the API and every stage, in INTAKE_HUB_PROCESSES processes."""
    if args.child or settings.processes == 1:
        return _run_app(args, settings, STAGE_NAMES, intake=True)
    try:
        settings.check_secrets()
    except ConfigError as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    from intake_hub.cli import processes

    if (problem := processes.prepare(settings)) is not None:
        print(f"intake-hub: {problem}", file=sys.stderr)
        return 2
    own = [*(["--host", args.host] if args.host else [])]
    own += [
        *(["--port", str(args.port)] if args.port else []),
        *(["--quiet"] if args.quiet else []),
    ]
    return processes.Supervisor(settings.processes, processes.child_argv(own)).run()


def _needs_broker(role: str) -> int:
    print(
        f"intake-hub: {role} needs a broker: set INTAKE_HUB_AMQP_URL "
        "(or run `intake-hub serve` for everything in one process)",
        file=sys.stderr,
    )
    return 2


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Take messages in over HTTP and publish them to RabbitMQ; run no stage."""
    if not settings.amqp_url:
        return _needs_broker("gateway")
    return _run_app(args, settings, (), intake=True)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run pipeline stages from RabbitMQ; HTTP serves only /healthz, /readyz and /metrics."""
    if not settings.amqp_url:
        return _needs_broker("worker")
    return _run_app(args, settings, tuple(args.stage or STAGE_NAMES), intake=False)


def _run_app(
    args: argparse.Namespace, settings: Settings, run: Sequence[str], *, intake: bool
) -> int:
    try:
        settings.check_secrets()
    except ConfigError as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    from aiohttp import web

    from intake_hub.app import create_app
    from intake_hub.connectors.registry import ConnectorConfigError
    from intake_hub.rules import RulesError
    from intake_hub.runtime.spool import SpoolUnwritable
    from intake_hub.webguard import RedactingAccessLogger, hide_server_banner

    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        loop = asyncio.new_event_loop()
    host = args.host or settings.http_host
    port = args.port or settings.http_port
    # The home holds the database, the spool and the secret key: ours alone.
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        app = create_app(settings, run, intake=intake)
    except (RulesError, ConnectorConfigError) as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    hide_server_banner()
    sibling = getattr(args, "child", False)
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            # One of several processes of a `serve`: the kernel shares the port out among them,
            # and each answers its siblings on a socket of its own.
            reuse_port=sibling or None,
            path=_join_siblings(app, settings) if sibling else None,
            access_log=None if args.quiet else logging.getLogger("intake_hub.access"),
            # Query strings carry access codes and WeChat signatures: never aiohttp's `%r`.
            access_log_class=RedactingAccessLogger,
            print=lambda *_: log.info("listening on http://%s:%s", host, port),
            shutdown_timeout=30.0,
            loop=loop,
        )
    except SpoolUnwritable as exc:
        # A read-only or full data directory: nothing could be accepted durably.
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    return 0


def _join_siblings(app: web.Application, settings: Settings) -> str:
    """Give this process its sibling socket and let `/metrics` gather from the others."""
    from intake_hub.api.ops import PEERS, SERVICES
    from intake_hub.api.peers import Peers, socket_path

    own = socket_path(settings.home, app[SERVICES].numbers.node)
    # Left behind by the process that held this slot before (it died): ours now.
    own.unlink(missing_ok=True)
    app[PEERS] = Peers(settings.home, own)
    return str(own)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add serve, gateway and worker to the command line."""
    serve = sub.add_parser(
        "serve", help="run everything, on every core (INTAKE_HUB_PROCESSES), without a broker"
    )
    serve.add_argument("--host", help="listen address (INTAKE_HUB_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (INTAKE_HUB_HTTP_PORT)")
    serve.add_argument("--quiet", action="store_true", help="no access log")
    serve.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    gateway = sub.add_parser(
        "gateway", help="HTTP intake only: publish to RabbitMQ (needs INTAKE_HUB_AMQP_URL)"
    )
    worker = sub.add_parser(
        "worker",
        help="run stages from RabbitMQ (needs INTAKE_HUB_AMQP_URL)",
        description="Run pipeline stages from RabbitMQ. HTTP serves only /healthz, /readyz "
        "and /metrics, on INTAKE_HUB_HTTP_PORT.",
    )
    worker.add_argument(
        "--stage",
        action="append",
        choices=STAGE_NAMES,
        help="a stage to run (repeatable; default every stage)",
    )
    for role, func in ((gateway, cmd_gateway), (worker, cmd_worker)):
        role.add_argument("--host", help="listen address (INTAKE_HUB_HTTP_HOST)")
        role.add_argument("--port", type=int, help="listen port (INTAKE_HUB_HTTP_PORT)")
        role.add_argument("--quiet", action="store_true", help="no access log")
        role.set_defaults(func=func)
