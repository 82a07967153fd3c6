"""The `intake-hub` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from intake_hub.config import ConfigError, Settings
from intake_hub.stages import STAGE_NAMES

if TYPE_CHECKING:
    from intake_hub.api.admin import DeadLetters
    from intake_hub.bus import RabbitBus

log = logging.getLogger("intake_hub")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run everything in one process: HTTP intake, the API and every stage."""
    return _run_app(args, settings, STAGE_NAMES, intake=True)


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Take messages in over HTTP and publish them to RabbitMQ; run no stage."""
    if not settings.amqp_url:
        print(
            "intake-hub: gateway needs a broker: set INTAKE_HUB_AMQP_URL "
            "(or run `intake-hub serve` for everything in one process)",
            file=sys.stderr,
        )
        return 2
    return _run_app(args, settings, (), intake=True)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run pipeline stages from RabbitMQ; HTTP serves only /healthz, /readyz and /metrics."""
    if not settings.amqp_url:
        print(
            "intake-hub: worker needs a broker: set INTAKE_HUB_AMQP_URL "
            "(or run `intake-hub serve` for everything in one process)",
            file=sys.stderr,
        )
        return 2
    return _run_app(args, settings, tuple(args.stage or STAGE_NAMES), intake=False)


def _run_app(
    args: argparse.Namespace, settings: Settings, run: Sequence[str], *, intake: bool
) -> int:
    from aiohttp import web

    from intake_hub.app import create_app
    from intake_hub.connectors.registry import ConnectorConfigError
    from intake_hub.rules import RulesError

    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        loop = asyncio.new_event_loop()
    host = args.host or settings.http_host
    port = args.port or settings.http_port
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        app = create_app(settings, run, intake=intake)
    except (RulesError, ConnectorConfigError) as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None if args.quiet else logging.getLogger("intake_hub.access"),
        print=lambda *_: log.info("listening on http://%s:%s", host, port),
        shutdown_timeout=30.0,
        loop=loop,
    )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending database migrations."""
    from intake_hub.storage import db

    settings.home.mkdir(parents=True, exist_ok=True)
    asyncio.run(db.migrate(settings.database_url))
    print("database is up to date")
    return 0


def cmd_agent_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create an agent and print their bearer token (shown once, stored only as a hash)."""
    from intake_hub.storage import agents, db

    async def add() -> str:
        await db.open_db(settings.database_url)
        try:
            return await agents.add_agent(
                args.login,
                args.name or args.login,
                args.role,
                team=args.team,
                skills=tuple(args.skill),
                capacity=args.capacity,
            )
        finally:
            await db.close_db()

    settings.home.mkdir(parents=True, exist_ok=True)
    token = asyncio.run(add())
    print(token)
    return 0


def cmd_rules_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate the rule files; every problem names its file and line."""
    from intake_hub.rules import RulesError, load_rules

    rules_dir = args.rules_dir or settings.rules_dir
    try:
        rules = load_rules(rules_dir)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{rules_dir}: ok (version {rules.version})")
    return 0


def cmd_rules_explain(args: argparse.Namespace, settings: Settings) -> int:
    """Show what the rules would do with one message, and why."""
    from intake_hub.stages.explain import run

    rules_dir = args.rules_dir or settings.rules_dir
    tags = tuple(args.customer_tag)
    return run(args.text, rules_dir, args.channel, tags, args.json, settings.public_url)


DLQ_HELP = """\
Dead letters: messages a stage gave up on after every retry, kept with the reason.

Works on RabbitMQ (INTAKE_HUB_AMQP_URL), across processes. On the in-process bus dead
letters live in the serving process's memory: reach them through the admin API
(GET /api/v1/admin/dlq, POST /api/v1/admin/dlq/replay, POST /api/v1/admin/dlq/purge).
"""


def _operator_bus(settings: Settings) -> RabbitBus | None:
    from intake_hub.bus import RabbitBus

    if not settings.amqp_url:
        print(
            "intake-hub: this needs INTAKE_HUB_AMQP_URL; on the in-process bus dead letters "
            "live in the serving process: use the admin API (GET /api/v1/admin/dlq)",
            file=sys.stderr,
        )
        return None
    return RabbitBus(settings.amqp_url)


async def _with_dead_letters(
    settings: Settings, act: Callable[[DeadLetters], Awaitable[int]]
) -> int:
    from intake_hub.api.admin import DeadLetters
    from intake_hub.bus import RetryPolicy
    from intake_hub.runtime.pipeline import topology

    bus = _operator_bus(settings)
    if bus is None:
        return 2
    await bus.start()
    try:
        for spec in topology(RetryPolicy(settings.retry_delays)):
            await bus.declare(spec)
        return await act(DeadLetters(bus))
    finally:
        await bus.close()


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    """List dead letters: id, stage, attempts, error, ticket and the start of the text."""

    async def act(dead: DeadLetters) -> int:
        items = await dead.list(args.stage)
        if args.json:
            print(orjson.dumps([i.model_dump(mode="json") for i in items]).decode())
            return 0
        if not items:
            print("no dead letters")
            return 0
        for i in items:
            print(
                f"{i.id}  {i.stage}  attempts={i.attempts}  ticket={i.ticket or '-'}  "
                f"dead_at={i.dead_at:%Y-%m-%d %H:%M:%S}Z"
            )
            print(f"    error: {_one_line(i.error, 160)}")
            print(f"    text:  {_one_line(i.text, 80)}")
        print(f"{len(items)} dead letter(s)")
        return 0

    return asyncio.run(_with_dead_letters(settings, act))


def cmd_dlq_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print one dead letter's envelope as JSON (the reason goes to stderr)."""

    async def act(dead: DeadLetters) -> int:
        found = await dead.find(args.id)
        if found is None:
            print(f"intake-hub: no dead letter {args.id}", file=sys.stderr)
            return 1
        info, body = found
        print(
            f"# {info.id} stage={info.stage} attempts={info.attempts} error={info.error}",
            file=sys.stderr,
        )
        try:
            print(orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode())
        except orjson.JSONDecodeError:
            print(body.decode("utf-8", "replace"))
        return 0

    return asyncio.run(_with_dead_letters(settings, act))


def cmd_dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Send dead letters (those named, else all) through their stage again."""
    return _dlq_act(args, settings, replay=True)


def cmd_dlq_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Drop dead letters (those named, else all) for good."""
    return _dlq_act(args, settings, replay=False)


def _dlq_act(args: argparse.Namespace, settings: Settings, *, replay: bool) -> int:
    async def act(dead: DeadLetters) -> int:
        ids = args.ids or None
        done = await (dead.replay if replay else dead.purge)(ids, args.stage)
        print(f"{'replayed' if replay else 'purged'} {done.count}")
        if done.missing:
            print(f"intake-hub: not found: {' '.join(done.missing)}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(_with_dead_letters(settings, act))


def cmd_topology_export(args: argparse.Namespace, settings: Settings) -> int:
    """Print the RabbitMQ definitions of the pipeline, generated from the code."""
    from intake_hub.bus import RabbitBus, RetryPolicy
    from intake_hub.runtime.pipeline import topology

    bus = RabbitBus(settings.amqp_url or "amqp://localhost/")
    for spec in topology(RetryPolicy(settings.retry_delays)):
        bus.register(spec)
    definitions = bus.definitions(vhost=args.vhost, rabbitmq_major=args.rabbitmq)
    print(orjson.dumps(definitions, option=orjson.OPT_INDENT_2).decode())
    return 0


def _add_operations_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser(
        "dlq",
        help="list, show, replay or purge dead letters (RabbitMQ)",
        description=DLQ_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dlq_sub = dlq.add_subparsers(dest="dlq", required=True)
    listing = dlq_sub.add_parser("list", help="list dead letters")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_dlq_list)
    show = dlq_sub.add_parser("show", help="print one dead letter's envelope as JSON")
    show.add_argument("id")
    show.set_defaults(func=cmd_dlq_show)
    replay = dlq_sub.add_parser("replay", help="send dead letters through their stage again")
    replay.set_defaults(func=cmd_dlq_replay)
    purge = dlq_sub.add_parser("purge", help="drop dead letters for good")
    purge.set_defaults(func=cmd_dlq_purge)
    for action in (replay, purge):
        action.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids (default all)")
    for command in (listing, replay, purge):
        command.add_argument("--stage", choices=STAGE_NAMES, help="only this stage's")

    topology = sub.add_parser("topology", help="the RabbitMQ topology of the pipeline")
    topology.add_argument(
        "--export", action="store_true", required=True, help="print RabbitMQ definitions JSON"
    )
    topology.add_argument("--vhost", default="/", help="virtual host to put in the definitions")
    topology.add_argument(
        "--rabbitmq",
        type=int,
        choices=(3, 4),
        default=4,
        help="RabbitMQ major version the definitions are for (4)",
    )
    topology.set_defaults(func=cmd_topology_export)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="intake-hub", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run everything in one process")
    serve.add_argument("--host", help="listen address (INTAKE_HUB_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (INTAKE_HUB_HTTP_PORT)")
    serve.add_argument("--quiet", action="store_true", help="no access log")
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

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    _add_operations_commands(sub)

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="agent", required=True
    )
    add = agent.add_parser("add", help="create an agent and print their token")
    add.add_argument("login")
    add.add_argument("--name")
    add.add_argument("--role", choices=("agent", "supervisor", "admin"), default="agent")
    add.add_argument("--team", help="team id from rules/routing.yaml")
    add.add_argument("--skill", action="append", default=[], help="a skill (repeatable)")
    add.add_argument("--capacity", type=int, default=50, help="most open tickets at once")
    add.set_defaults(func=cmd_agent_add)

    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(dest="rules", required=True)
    check = rules_sub.add_parser("check", help="validate the rule files")
    check.add_argument("rules_dir", nargs="?", type=Path)
    check.set_defaults(func=cmd_rules_check)
    explain = rules_sub.add_parser("explain", help="show what the rules do with a message")
    explain.add_argument("text", help="the customer's message")
    explain.add_argument("--channel", default="web", help="channel it arrives on (web)")
    explain.add_argument(
        "--customer-tag", action="append", default=[], help="a customer tag such as vip"
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.add_argument("--rules-dir", type=Path, help="rules directory (INTAKE_HUB_RULES_DIR)")
    explain.set_defaults(func=cmd_rules_explain)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `intake-hub` console script."""
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"intake-hub: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
