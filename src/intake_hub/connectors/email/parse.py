"""Raw mail to its parts: sender, subject, the text written this time, files; pure.

Headers are decoded here rather than by the policy's header registry, so a `gb2312`
encoded word holding GBK-only characters (喆, 镕) decodes as the sender meant it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import dataclass
from email.header import decode_header
from email.message import EmailMessage, Message
from email.utils import getaddresses

from intake_hub.connectors.email.bounces import Bounce, bounce, msg_ids
from intake_hub.connectors.email.htmltext import html_to_text
from intake_hub.connectors.email.loops import automatic
from intake_hub.connectors.email.quotes import FORWARD_SUBJECT, trim

# Chinese mail labelled with these is often really GBK: gb18030 reads all of them.
_GBK = frozenset({"gb2312", "gbk", "cp936", "euc-cn", "x-gbk", "gb_2312-80", "csgb2312", "936"})
# Parts that describe a delivery rather than carry the customer's files.
_REPORT_PARTS = frozenset({"message/delivery-status", "text/rfc822-headers"})
_REFERENCES_MAX = 50


class Unparsable(ValueError):
    """Mail the hub cannot read faithfully: kept aside to be replayed once it can."""


@dataclass(frozen=True)
class MailFile:
    """An attached file as the sender named and sent it (checked later, at the edge)."""

    name: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Mail:
    """What the hub takes from one message."""

    message_id: str  # without angle brackets; made from the bytes when the mail has none
    from_address: str  # lower case
    from_name: str | None
    subject: str
    text: str  # what was written this time: history and signature trimmed
    files: tuple[MailFile, ...]
    automatic: str | None  # why a machine sent it, or None
    references: tuple[str, ...]  # ids it answers, nearest first (In-Reply-To, then References)
    bounce: Bounce | None  # what a delivery status notification reports, else None


def codec(label: str | None) -> str | None:
    """The codec to decode a declared charset with: GBK's labels read as gb18030."""
    if label is None:
        return None
    label = label.strip().strip('"').lower()
    return "gb18030" if label in _GBK else label


def decode_bytes(data: bytes, label: str | None) -> str:
    """`data` in its declared charset; undeclared: UTF-8, else gb18030. Unknown: Unparsable."""
    name = codec(label)
    if name is None or name in ("us-ascii", "ascii"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("gb18030", errors="replace")
    try:
        return data.decode(name, errors="replace")
    except LookupError:
        raise Unparsable(f"unknown charset {label!r}") from None


def header_text(raw: str) -> str:
    """A raw header value with its RFC 2047 encoded words decoded, in any charset."""
    words: list[str] = []
    for chunk, label in decode_header(raw):
        if isinstance(chunk, str):
            # Raw 8-bit bytes in a header arrive as surrogate escapes: read them as text.
            chunk = chunk.encode("utf-8", errors="surrogateescape")
            label = label or None
        words.append(decode_bytes(chunk, label))
    return " ".join("".join(words).split())


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _sender(msg: Message, mail_from: str | None) -> tuple[str, str | None]:
    raw = _raw_header(msg, "From")
    pairs = getaddresses([raw]) if raw else []
    name, address = pairs[0] if pairs else ("", "")
    if not address or "@" not in address:
        address = (mail_from or "").strip("<>")
    if not address:
        raise Unparsable("no sender address")
    address = header_text(address).lower()
    shown = header_text(name) if name else ""
    return address, shown or None


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text = decode_bytes(data, part.get_content_charset())
    if part.get_content_type() == "text/html":
        return html_to_text(text)
    return text.replace("\r\n", "\n").strip()


def _file_name(part: Message) -> str | None:
    name = part.get_filename()
    if name is None:
        return None
    name = str(name)
    # Chinese clients often put RFC 2047 words in the filename parameter.
    return header_text(name) if "=?" in name else name


def _files(part: Message, body: Message | None) -> list[MailFile]:
    """Every file in `part`, not descending into attached messages."""
    if part is body:
        return []
    kind = part.get_content_type()
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        subs = part.get_payload()
        return [f for sub in subs if isinstance(sub, Message) for f in _files(sub, body)]
    if kind in _REPORT_PARTS:
        return []
    name = _file_name(part)
    if kind == "message/rfc822":
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        data = first.as_bytes() if isinstance(first, Message) else b""
        return [MailFile(name or "message.eml", kind, data)] if data else []
    inline = part.get_content_disposition() != "attachment"
    if name is None and inline and kind in ("text/plain", "text/html"):
        return []  # another rendering of the body (the HTML beside the plain text)
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return [MailFile(name, kind, data)] if data else []


def message_id(msg: Message, raw: bytes) -> str:
    """The mail's Message-ID without brackets; from a hash of its bytes when it has none."""
    found = header_text(_raw_header(msg, "Message-ID") or "").strip().strip("<>").strip()
    if found and " " not in found:
        return found
    return f"sha256-{hashlib.sha256(raw).hexdigest()}@intake-hub.invalid"


def references(msg: Message) -> tuple[str, ...]:
    """Ids `msg` answers: In-Reply-To's, then References' last (the parent) first; 50 at most."""
    replied: list[str] = []
    listed: list[str] = []
    for key, value in msg.raw_items():
        name = key.lower()
        if name == "in-reply-to":
            replied += msg_ids(str(value))
        elif name == "references":
            listed += msg_ids(str(value))
    found = dict.fromkeys(_text_id(i) for i in [*replied, *reversed(listed)])
    return tuple(i for i in found if i)[:_REFERENCES_MAX]


def _text_id(found: str) -> str:
    # Stray 8-bit bytes in a header arrive as surrogate escapes: read them as UTF-8.
    return found.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def parse(raw: bytes, *, mail_from: str | None = None, own_domain: str = "") -> Mail:
    """The parts of one raw mail as delivered (`mail_from`: the SMTP envelope sender)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    if not msg.keys():
        raise Unparsable("no headers")
    address, name = _sender(msg, mail_from)
    mid = message_id(msg, raw)
    body = msg.get_body(preferencelist=("plain", "html"))
    text = _text_of(body) if body is not None else ""
    subject = header_text(_raw_header(msg, "Subject") or "")
    forwarded = FORWARD_SUBJECT.match(subject) is not None
    return Mail(
        message_id=mid,
        from_address=address,
        from_name=name,
        subject=subject,
        text=trim(text, forwarded=forwarded) if text else "",
        files=tuple(_files(msg, body)),
        automatic=automatic(
            msg, mail_from=mail_from, from_address=address, message_id=mid, own_domain=own_domain
        ),
        references=references(msg),
        bounce=bounce(msg),
    )
