"""WeChat push XML to envelope: pure, no I/O.

What makes a ticket: every customer message (text, image, voice, video, shortvideo,
location, link, and any newer type as a placeholder), and a custom-menu CLICK whose key
the config maps to a text (the button stands for the customer writing it). What does not:
subscribe (answered with the configured welcome), unsubscribe (nothing can be sent to
them any more), the "my tickets" menu key (answered with the customer's open tickets),
VIEW (the menu only opened a page), SCAN and the other events. The follow state and the
ticket list need the database: `NoTicket.action` tells the connector what to do.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID
from xml.parsers.expat import ExpatError

from wechatpy import parse_message
from wechatpy.messages import UnknownMessage

from intake_hub.envelope import AttachmentRef, CustomerRef, Envelope, Identity

MEDIA = "wechat-media:"
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_UNION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PLACEHOLDER = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "shortvideo": "[小视频]"}


class BadMessage(ValueError):
    """The body is not a WeChat push this connector can read."""


@dataclass(frozen=True)
class Inbound:
    """One push from WeChat, read and checked; `message` is wechatpy's, for `create_reply`."""

    message: Any
    type: str
    event: str
    msg_id: int
    openid: str
    account: str
    create_time: int
    union_id: str | None = None

    @property
    def key(self) -> str:
        """The id WeChat's retries share: MsgId, or for events sender + time + event."""
        if self.type == "event":
            return f"{self.openid}:{self.create_time}:{self.event}"
        return str(self.msg_id)


Action = Literal["", "follow", "unfollow", "my_tickets"]


@dataclass(frozen=True)
class NoTicket:
    """A push that makes no ticket, and its passive reply text ("" answers `success`).

    `action` is what the connector still does: record a follow or an unfollow, or answer
    with the customer's open tickets instead of `reply`.
    """

    reply: str
    why: str
    action: Action = ""


def signature(*parts: str) -> str:
    """WeChat's signature: sha1 over the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def cdata_safe(text: str) -> str:
    """The text with every `]]>` split across two CDATA sections, so it cannot end one early."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def _text(msg: Any, attr: str, *, required: bool = False, limit: int = 20_000) -> str:
    value = getattr(msg, attr)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadMessage(f"{attr} is not text")
    if required and not value.strip():
        raise BadMessage(f"{attr} is missing")
    if len(value) > limit:
        raise BadMessage(f"{attr} is longer than {limit}")
    return value


def parse(body: bytes) -> Inbound:
    """Read one plaintext push; BadMessage for anything else (entities, bad XML, gaps)."""
    try:
        msg = parse_message(body)
        if msg is None:
            raise BadMessage("empty body")
        kind, event = msg.type, getattr(msg, "event", "")
        if isinstance(msg, UnknownMessage):
            # A type wechatpy does not know: its parsed fields are all it keeps of it.
            raw = msg._data
            kind = str(raw["MsgType"]).lower()
            event = str(raw.get("Event", "")).lower() if kind == "event" else ""
        if not isinstance(kind, str) or not _TYPE.match(kind):
            raise BadMessage("MsgType is not a message type")
        if kind == "event" and not (isinstance(event, str) and _TYPE.match(event)):
            raise BadMessage("Event is not an event type")
        msg_id = msg.id
        create_time = msg.time
        openid = _text(msg, "source", required=True, limit=64)
        account = _text(msg, "target", required=True, limit=64)
        union_id = _union_id(msg._data.get("UnionID"))
    except BadMessage:
        raise
    # wechatpy reports broken input as whatever its XML and field code happens to raise.
    except (ExpatError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise BadMessage(f"unreadable push: {type(exc).__name__}") from None
    if not isinstance(create_time, int) or create_time <= 0:
        raise BadMessage("CreateTime is missing")
    if kind != "event" and (not isinstance(msg_id, int) or msg_id <= 0):
        raise BadMessage("MsgId is missing")
    return Inbound(msg, kind, event, msg_id, openid, account, create_time, union_id)


def _union_id(raw: object) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or not _UNION_ID.match(raw.strip()):
        raise BadMessage("UnionID is not a union id")
    return raw.strip()


def _coordinate(msg: Any, attr: str) -> str:
    raw = _text(msg, attr, required=True, limit=32)
    try:
        value = float(raw)
    except ValueError:
        raise BadMessage(f"{attr} is not a number") from None
    if not math.isfinite(value):
        raise BadMessage(f"{attr} is not a number")
    return raw.strip()


def _content(inbound: Inbound) -> tuple[str, tuple[AttachmentRef, ...]]:
    msg, kind = inbound.message, inbound.type
    if kind == "text":
        return _text(msg, "content", required=True), ()
    if kind == "image":
        refs = [AttachmentRef(kind="image", ref=MEDIA + _text(msg, "media_id", required=True))]
        if url := _text(msg, "image", limit=2000):
            refs.append(AttachmentRef(kind="image_url", ref=url))
        return _PLACEHOLDER[kind], tuple(refs)
    if kind == "voice":
        media = _text(msg, "media_id", required=True)
        fmt = _text(msg, "format", limit=16).lower()
        # WeChat's speech recognition, when the account has it on, is what the customer said.
        said = _text(msg, "recognition").strip()
        ref = AttachmentRef(kind="voice", ref=MEDIA + media, name=f"voice.{fmt}" if fmt else None)
        return said or _PLACEHOLDER[kind], (ref,)
    if kind in ("video", "shortvideo"):
        refs = [AttachmentRef(kind="video", ref=MEDIA + _text(msg, "media_id", required=True))]
        if thumb := _text(msg, "thumb_media_id", limit=200):
            refs.append(AttachmentRef(kind="thumbnail", ref=MEDIA + thumb))
        return _PLACEHOLDER[kind], tuple(refs)
    if kind == "location":
        lat, lng = _coordinate(msg, "location_x"), _coordinate(msg, "location_y")
        label = _text(msg, "label", limit=500).strip()
        where = AttachmentRef(kind="location", ref=f"geo:{lat},{lng}", name=label or None)
        return " ".join(p for p in ("[位置]", label, f"({lat}, {lng})") if p), (where,)
    if kind == "link":
        title = _text(msg, "title", limit=500).strip()
        url = _text(msg, "url", required=True, limit=2000).strip()
        about = _text(msg, "description", limit=2000).strip()
        text = "\n".join(p for p in (f"[链接] {title}".strip(), about, url) if p)
        return text, (AttachmentRef(kind="link", ref=url, name=title or None),)
    return f"[{kind}]", ()


def to_envelope(
    inbound: Inbound,
    *,
    env_id: UUID,
    ticket: str,
    received_at: datetime,
    instance: str,
    welcome: str = "",
    menu: Mapping[str, str] | None = None,
    my_tickets_key: str = "",
    identity: Identity = "claimed",
) -> Envelope | NoTicket:
    """The envelope for one push, or why it makes no ticket and what to answer instead.

    `identity` is "verified" only for a push that came sealed (safe mode): the plaintext
    mode's signature leaves the body, and with it the sender's openid, unsigned.
    """
    text: str
    attachments: tuple[AttachmentRef, ...] = ()
    if inbound.type == "event":
        msg, event = inbound.message, inbound.event
        if event in ("subscribe", "subscribe_scan"):
            return NoTicket(welcome, "new follower", "follow")
        if event == "unsubscribe":
            return NoTicket("", "unsubscribe event", "unfollow")
        if event != "click":
            return NoTicket("", f"{event} event")
        key = _text(msg, "key", limit=128)
        if my_tickets_key and key == my_tickets_key:
            return NoTicket("", "my tickets", "my_tickets")
        if not menu or key not in menu:
            return NoTicket("", f"menu key {key!r} is not configured")
        text = menu[key]
    else:
        text, attachments = _content(inbound)
    return Envelope(
        id=env_id,
        channel="wechat",
        source=f"wechat/{instance}",
        external_id=inbound.key,
        ticket=ticket,
        customer=CustomerRef(key=inbound.openid, union_id=inbound.union_id, identity=identity),
        text=text,
        attachments=attachments,
        received_at=received_at,
    )
