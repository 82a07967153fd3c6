"""webhooks list and redeliver: the events sent to app backends, from the database."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import orjson

from intake_hub import ticketno
from intake_hub.cli.agents import _with_db
from intake_hub.config import Settings


def cmd_webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    """List events newest first: id, type, ticket, status, attempts, last code, next try."""
    from intake_hub.api.webhooks import describe
    from intake_hub.storage import app_events

    number = (ticketno.normalize(args.ticket) or args.ticket) if args.ticket else None
    rows = _with_db(settings, lambda: app_events.listing(args.status, number, args.limit))
    items = [describe(r) for r in rows]
    if args.json:
        print(orjson.dumps([i.model_dump(mode="json") for i in items]).decode())
        return 0
    if not items:
        print("no events")
        return 0
    for i in items:
        code = "-" if i.last_status is None else str(i.last_status)
        when = i.next_at.isoformat(timespec="seconds") if i.next_at else "-"
        print(
            f"{i.webhook_id}  {i.type:<21}  {i.ticket}  {i.status:<9}  "
            f"{i.attempts:>3}  {code:>3}  {when}  {i.last_error or ''}"
        )
    print(f"{len(items)} event(s)")
    return 0


def cmd_webhooks_redeliver(args: argparse.Namespace, settings: Settings) -> int:
    """Put events back in the queue, due now; 1 if any id is unknown."""
    from intake_hub.storage import app_events

    ids: list[str] = list(dict.fromkeys(args.ids))
    found = _with_db(settings, lambda: app_events.redeliver(ids, datetime.now(UTC)))
    for webhook_id in ids:
        if webhook_id in found:
            print(f"{webhook_id} pending: sent again within a poll")
        else:
            print(f"intake-hub: no event {webhook_id}", file=sys.stderr)
    return 0 if len(found) == len(ids) else 1


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add webhooks list and redeliver to the command line."""
    hooks = sub.add_parser("webhooks", help="events sent to app backends").add_subparsers(
        dest="webhooks", required=True
    )
    ls = hooks.add_parser("list", help="the delivery log, newest first")
    ls.add_argument("--status", choices=("pending", "delivered", "dead"))
    ls.add_argument("--ticket", help="one ticket's events")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.set_defaults(func=cmd_webhooks_list)
    again = hooks.add_parser("redeliver", help="send events again (delivered or dead ones too)")
    again.add_argument("ids", nargs="+", metavar="ID", help="webhook ids (evt_...)")
    again.set_defaults(func=cmd_webhooks_redeliver)
