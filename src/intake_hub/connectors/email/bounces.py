"""Delivery status notifications (RFC 3464) read: which mail bounced, for whom, why; pure.

A report is read for what it holds and never raises: a malformed one gives what can be
read (no recipients, no original id), so the caller still sees a bounce arrived.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

# Parts that return the bounced mail, whole or only its headers (RFC 3462, RFC 6533).
_RETURNED = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
_STATUS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_REASON_MAX = 200
# Longer ids were never stored (Message-IDs are kept in 255 characters), so never match.
_ID_MAX = 255
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")

Fields = dict[str, str]


@dataclass(frozen=True)
class Bounce:
    """What a delivery status notification says about a mail the hub (or anyone) sent."""

    original_id: str | None  # Message-ID of the mail that bounced, without brackets
    recipients: tuple[str, ...]  # addresses that failed, lower case
    permanent: bool  # some failed recipient's status is 5.x.x
    reason: str  # the first failed recipient's status and diagnostic, short


def msg_ids(value: str) -> list[str]:
    """The `<...>` Message-IDs in a header value, in order, skipping comments and quotes.

    An id holding whitespace (folded inside, or junk) or too long to be stored is left out.
    """
    ids: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "(":
            i = _past_comment(value, i)
        elif c == '"':
            i = _past_quoted(value, i)
        elif c == "<":
            end = value.find(">", i + 1)
            if end < 0:
                break
            found = value[i + 1 : end].strip()
            if found and len(found) <= _ID_MAX and not any(ch.isspace() for ch in found):
                ids.append(found)
            i = end + 1
        else:
            i += 1
    return ids


def _past_comment(value: str, i: int) -> int:
    depth = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        i += 1
        if depth == 0:
            break
    return i


def _past_quoted(value: str, i: int) -> int:
    i += 1
    while i < len(value) and value[i] != '"':
        i += 2 if value[i] == "\\" else 1
    return i + 1


def _clean(value: object) -> str:
    """A header value as one line of text; stray 8-bit bytes read as UTF-8."""
    text = str(value).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return " ".join(text.split())


def _fields(msg: Message) -> Fields:
    """A header block's fields, names lower case, the first occurrence of each."""
    found: Fields = {}
    for key, value in msg.raw_items():
        found.setdefault(key.lower(), _clean(value))
    return found


def _body_text(part: Message) -> str:
    """The undecoded body of a part the email package split into field groups (or not)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(
            str(sub.get_payload()) for sub in payload if isinstance(sub, Message) and not sub.keys()
        )
    return str(payload)


def _decoded(part: Message, text: str) -> str:
    """`text` undone from the part's transfer encoding, if it declares one."""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    data = text.encode("ascii", errors="ignore")
    try:
        if cte == "base64":
            data = base64.b64decode(data)
        elif cte == "quoted-printable":
            data = quopri.decodestring(data)
        else:
            return text
    except (binascii.Error, ValueError):
        return ""
    return data.decode("utf-8", errors="replace")


def _groups_in(text: str) -> Iterator[Fields]:
    """Field groups of a delivery-status body read by hand: blank lines between groups."""
    for block in re.split(r"\r?\n[ \t]*\r?\n", text.replace("\r\n", "\n")):
        group: Fields = {}
        name = ""
        for line in block.split("\n"):
            if line[:1] in (" ", "\t") and name:
                group[name] = _clean(f"{group[name]} {line}")
            elif ":" in line:
                key, _, value = line.partition(":")
                name = key.strip().lower()
                group.setdefault(name, _clean(value))
        if group:
            yield group


def _groups(part: Message) -> list[Fields]:
    """The field groups of a delivery-status part: the per-message one, then per recipient."""
    payload = part.get_payload()
    parsed = (
        [_fields(g) for g in payload if isinstance(g, Message)] if isinstance(payload, list) else []
    )
    if any(parsed):
        return [g for g in parsed if g]
    return list(_groups_in(_decoded(part, _body_text(part))))


def _address(value: str) -> str | None:
    """`rfc822; Gone@Example.net` -> `gone@example.net`; None when it is no address."""
    found = value.partition(";")[2] if ";" in value else value
    found = found.strip().strip("<>").strip().lower()
    return found if "@" in found and " " not in found else None


def _status(group: Fields) -> str:
    """The status code of a recipient: its Status, else the SMTP code of its diagnostic."""
    status = group.get("status", "").split(" ")[0]
    if status:
        return status
    code = _SMTP_CODE.search(group.get("diagnostic-code", ""))
    return f"{code.group(1)}.0.0" if code else ""


def _original_id(part: Message) -> str | None:
    """The Message-ID of a returned mail (whole or its headers), or None."""
    payload = part.get_payload()
    if isinstance(payload, list):
        inner = [m for m in payload if isinstance(m, Message)]
        headers = _fields(inner[0]) if inner and inner[0].keys() else {}
        if not headers:
            headers = next(_groups_in(_decoded(part, _body_text(part))), {})
    else:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(payload)
        headers = next(_groups_in(text), {})
    ids = msg_ids(headers.get("message-id", ""))
    return ids[0] if ids else None


def _is_report(msg: Message) -> bool:
    if msg.get_content_type() != "multipart/report":
        return False
    kind = str(msg.get_param("report-type", "") or "").strip().lower()
    if kind:
        return kind in ("delivery-status", "global-delivery-status")
    parts = msg.get_payload()
    return isinstance(parts, list) and any(
        isinstance(p, Message) and p.get_content_type() in _STATUS for p in parts
    )


def bounce(msg: Message) -> Bounce | None:
    """What `msg` reports when it is a delivery status notification, else None."""
    try:
        if not _is_report(msg):
            return None
        parts = [p for p in msg.get_payload() if isinstance(p, Message)]
    except Exception:  # a report's own headers unreadable: not one we can read at all
        return None
    original: str | None = None
    groups: list[Fields] = []
    for part in parts:
        kind = part.get_content_type()
        try:
            if kind in _STATUS and not groups:
                groups = _groups(part)
            elif kind in _RETURNED and original is None:
                original = _original_id(part)
        except Exception:  # malformed part: the rest of the report still counts
            continue
    return _read(original, groups)


def _read(original: str | None, groups: list[Fields]) -> Bounce:
    recipients: list[str] = []
    statuses: list[str] = []
    reason = ""
    for group in groups:
        if group.get("action", "").split(" ")[0].lower() != "failed":
            continue
        status = _status(group)
        statuses.append(status)
        if not reason:
            reason = " ".join(f"{status} {group.get('diagnostic-code', '')}".split())
        for name in ("final-recipient", "original-recipient"):
            address = _address(group.get(name, ""))
            if address and address not in recipients:
                recipients.append(address)
    return Bounce(
        original_id=original,
        recipients=tuple(recipients),
        permanent=any(s.startswith("5") for s in statuses),
        reason=reason[:_REASON_MAX],
    )
