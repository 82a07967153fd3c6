"""rules check and rules explain: the rule files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intake_hub.config import Settings


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


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add rules check and rules explain to the command line."""
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
