"""mail replay: feed mail kept aside as unparsable to the running SMTP listener again."""

from __future__ import annotations

import argparse
import email
import email.policy
import smtplib
import sys
from collections.abc import Sequence
from email.utils import getaddresses
from pathlib import Path

from intake_hub.config import Settings
from intake_hub.connectors.email.unparsed import Kept, forget, kept_files, read_kept


def unparsed_dir(settings: Settings) -> Path:
    """Where the shipped email.yaml keeps unparsable mail: HOME/mail/unparsed."""
    return settings.home / "mail" / "unparsed"


def _envelope(kept: Kept) -> tuple[str, list[str]]:
    """The kept SMTP envelope; for an `.eml` dropped in by hand, its From and To."""
    if kept.rcpt_tos:
        return kept.mail_from, list(kept.rcpt_tos)
    msg = email.message_from_bytes(kept.raw, policy=email.policy.compat32)
    senders = getaddresses(msg.get_all("From", []))
    rcpts = getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))
    sender = kept.mail_from or (senders[0][1] if senders else "")
    return sender, [a for _, a in rcpts if a]


def replay_one(path: Path, host: str, port: int) -> str:
    """Deliver one kept mail; `taken` (its file removed), `kept` (still unparsable) or why not."""
    from intake_hub.connectors.email.connector import KEPT_ASIDE

    kept = read_kept(path)
    mail_from, rcpt_tos = _envelope(kept)
    if not rcpt_tos:
        return "no recipient known"
    with smtplib.SMTP(host, port, timeout=60) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail(mail_from or "<>")
        if code != 250:
            return f"MAIL refused: {code} {reply.decode(errors='replace')}"
        taken = [r for r in rcpt_tos if smtp.rcpt(r)[0] in (250, 251)]
        if not taken:
            return "every recipient refused"
        code, reply = smtp.data(kept.raw)
    text = f"{code} {reply.decode(errors='replace')}"
    if text == KEPT_ASIDE:
        return "kept"
    if code != 250:
        return f"DATA refused: {text}"
    forget(path)
    return "taken"


def replay(files: Sequence[Path], host: str, port: int) -> int:
    """Replay `files` in order, one line each; 0 when every one was taken."""
    failed = 0
    for path in files:
        try:
            outcome = replay_one(path, host, port)
        except (OSError, smtplib.SMTPException) as exc:
            outcome = f"not delivered: {exc}"
        print(f"{path.name}: {outcome}")
        failed += outcome != "taken"
    return 1 if failed else 0


def cmd_mail_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay the named files, or every mail kept aside."""
    files = [Path(f) for f in args.files] or kept_files(args.dir or unparsed_dir(settings))
    if not files:
        print("no mail kept aside")
        return 0
    port = args.port if args.port is not None else settings.smtp_port
    code = replay(files, args.host, port)
    if code:
        print("intake-hub: some mail was not taken; see above", file=sys.stderr)
    return code


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `mail replay` to the command line."""
    mail = sub.add_parser("mail", help="mail intake").add_subparsers(dest="mail", required=True)
    replay_cmd = mail.add_parser(
        "replay",
        help="deliver mail kept aside as unparsable to the running listener again",
    )
    replay_cmd.add_argument("files", nargs="*", help="kept .eml files (default: all of them)")
    replay_cmd.add_argument("--dir", type=Path, help="where they are (HOME/mail/unparsed)")
    replay_cmd.add_argument("--host", default="127.0.0.1", help="the listener's address")
    replay_cmd.add_argument("--port", type=int, help="the listener's port (SMTP_PORT)")
    replay_cmd.set_defaults(func=cmd_mail_replay)
