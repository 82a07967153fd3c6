"""The `intake-hub` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from intake_hub.cli import agents, broker, db, mail, rules, run, webhooks
from intake_hub.config import ConfigError, Settings


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="intake-hub", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    # The order here is the order `intake-hub --help` lists the commands in.
    run.add_commands(sub)
    db.add_commands(sub)
    broker.add_commands(sub)
    agents.add_commands(sub)
    webhooks.add_commands(sub)
    mail.add_commands(sub)
    rules.add_commands(sub)
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
