"""dlq and topology: operating the RabbitMQ side of the pipeline."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from intake_hub.config import Settings
from intake_hub.stages import STAGE_NAMES

if TYPE_CHECKING:
    from intake_hub.api.admin import DeadLetters
    from intake_hub.bus import RabbitBus


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


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add dlq and topology to the command line."""
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
