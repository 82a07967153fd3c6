"""The email connector's kit for the contract suite: raw mails beside their envelopes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from intake_hub.app import OUTBOUND
from intake_hub.attachments import Refused, check
from intake_hub.attachments.store import digest_of
from intake_hub.connectors.email.normalize import original_ref, to_envelope
from intake_hub.connectors.email.parse import parse
from intake_hub.envelope import AttachmentRef, Envelope
from intake_hub.tickets.outbound import Delivery
from tests.connectors.contract import Kit
from tests.connectors.email.relay import start_relay
from tests.served.conftest import free_port
from tests.web.conftest import Client

PAYLOADS = Path(__file__).parent / "payloads"
MAX_BYTES = 25 * 1024 * 1024
# Fields the golden files leave out: made per delivery, or digests of re-encoded images.
VARYING = ("id", "ticket", "received_at", "attachments")


def envelope_of(raw: bytes, mail_from: str = "sender@example.net") -> Envelope:
    """The envelope the connector makes of `raw`, its files checked as it checks them."""
    mail = parse(raw, mail_from=mail_from)
    files = [original_ref(digest_of(raw), len(raw))]
    notes = []
    for f in mail.files:
        try:
            c = check(f.data, name=f.name, max_bytes=MAX_BYTES)
        except Refused as exc:
            notes.append(f"[attachment {f.name or 'unnamed'} refused: {exc.reason}]")
            continue
        files.append(
            AttachmentRef(
                kind="file",
                ref=digest_of(c.data),
                name=c.name,
                content_type=c.content_type,
                size=len(c.data),
            )
        )
    return to_envelope(
        mail,
        instance="email",
        env_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        received_at=datetime.now(UTC),
        files=files,
        notes=notes,
    )


def golden() -> Iterator[tuple[Envelope, Mapping[str, Any]]]:
    """Each recorded mail, normalised, beside the fields expected of it."""
    for path in sorted(PAYLOADS.glob("*.eml")):
        expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        yield envelope_of(path.read_bytes()), expected


RELAY_PORT = free_port()


async def deliver_twice(client: Client) -> int:
    """Offer one agent reply twice to the instance's way out; how many mails the relay got."""
    now = datetime.now(UTC)
    reply = Delivery(
        key=f"agent:{uuid.uuid4()}",
        ticket_id=uuid.uuid4(),
        number="0K3M7Q2X9HT",
        source="email/email",
        customer_key="amy@example.com",
        text="您的退货已受理",
        ticket_updated_at=now,
        at=now,
    )
    relay = await start_relay(RELAY_PORT)
    try:
        outbound = client.app[OUTBOUND]["email/email"]
        for _ in range(2):
            async with in_transaction():
                await outbound.enqueue(reply)
        await relay.wait(1)
        # Later passes of the sender must find nothing more to send.
        await asyncio.sleep(0.3)
        return len(relay.mails)
    finally:
        assert relay.server is not None
        relay.server.close()


KIT = Kit(
    type="email",
    yaml=(
        "type: email\nname: email\nrecipients: ${INTAKE_HUB_MAIL_RECIPIENTS}\nlisten_port: 0\n"
        f"relay: 127.0.0.1:{RELAY_PORT}\nrelay_security: none\nmail_from: service@shop.example\n"
        "outbound_poll_s: 0.05\n"
    ),
    identity="claimed",
    probes=(),
    golden=golden,
    env={"INTAKE_HUB_MAIL_RECIPIENTS": "service@shop.example"},
    deliver_twice=deliver_twice,
)
