"""The hub's own mail: Message-IDs, threading headers, text and HTML parts; pure.

Our Message-IDs carry 96 random bits: quoting one proves the sender saw the mail, which
went only to the ticket's address, so a reply that quotes it may join that ticket.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from intake_hub.ticketno import find_numbers, pretty

# Every mail the hub sends carries it (the ticket number): mail with it is our own.
OUTBOUND_HEADER = "X-Intake-Hub"
_OURS = re.compile(r"^ih-[0-9a-f]{24}\.[0-9A-Z]{11}@", re.IGNORECASE)
# Reply prefixes mail clients add, in the languages our customers write.
_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|回复|答复|回覆|转发)\s*[:：]\s*)+", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"']+")
# References grow with every turn; long ones are cut from the oldest (RFC 5322 3.6.4).
MAX_REFERENCES = 20


def new_message_id(number: str, domain: str) -> str:
    """A fresh Message-ID (without brackets) for a mail about ticket `number`."""
    return f"ih-{secrets.token_hex(12)}.{number}@{domain}"


def is_ours(message_id: str, domain: str) -> bool:
    """Whether `message_id` has the form of ours and our domain (a hint: stored ids decide)."""
    local_ok = _OURS.match(message_id) is not None
    return local_ok and message_id.lower().endswith(f"@{domain.lower()}")


def subject_for(number: str, subject: str | None, fallback: str) -> str:
    """`Re: <the customer's subject> [#NNNN-NNNN-NNN]`, the number once."""
    base = _PREFIX.sub("", subject or "").strip() or fallback.strip()[:60] or pretty(number)
    if number not in find_numbers(base):
        base = f"{base} [#{pretty(number)}]"
    return f"Re: {base}"


def html_of(text: str) -> str:
    """The text as a small HTML document: paragraphs, line breaks, links made clickable."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = []
        for line in block.splitlines():
            parts, at = [], 0
            for m in _URL.finditer(line):
                url = m.group(0)
                parts += [html.escape(line[at : m.start()]), f'<a href="{html.escape(url)}">']
                parts += [html.escape(url), "</a>"]
                at = m.end()
            lines.append("".join([*parts, html.escape(line[at:])]))
        paragraphs.append("<p>" + "<br>\n".join(lines) + "</p>")
    body = "\n".join(paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{body}\n</body></html>\n'
    )


@dataclass(frozen=True)
class Outgoing:
    """Everything one mail to a customer says, decided before it is composed."""

    to: str
    sender: str  # `Name <local@domain>` or a bare address
    subject: str
    text: str
    message_id: str
    number: str
    at: datetime
    # The mail answered (nearest first is not needed: the parent is last in `references`).
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    # RFC 3834: `auto-replied` answers a message, `auto-generated` is a notice; None: a person.
    auto_submitted: str | None = None


def _address(value: str) -> Address:
    """`Name <addr>` or a bare address; raises ValueError (or a defect) for a malformed one."""
    name, addr = parseaddr(value)
    return Address(display_name=name, addr_spec=addr)


def compose(out: Outgoing) -> EmailMessage:
    """The mail as sent: UTF-8 text and HTML, threading headers, loop markers.

    Raises for an address no mail can be written to (non-ASCII local part, malformed).
    """
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _address(out.sender)
    msg["To"] = _address(out.to)
    msg["Subject"] = out.subject
    msg["Date"] = format_datetime(out.at)
    msg["Message-ID"] = f"<{out.message_id}>"
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{out.in_reply_to}>"
    refs = list(dict.fromkeys(out.references))[-MAX_REFERENCES:]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    if out.auto_submitted:
        # RFC 3834; and Exchange's own switch so its out-of-office never answers us.
        msg["Auto-Submitted"] = out.auto_submitted
        msg["X-Auto-Response-Suppress"] = "All"
    msg[OUTBOUND_HEADER] = out.number
    msg.set_content(out.text, charset="utf-8")
    msg.add_alternative(html_of(out.text), subtype="html", charset="utf-8")
    return msg
