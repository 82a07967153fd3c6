"""Web form input to envelope: pure, no I/O. Every web contact is a claim, never an identity."""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

from intake_hub.connectors.web.schemas import WebMessageIn
from intake_hub.envelope import AttachmentRef, CustomerRef, Envelope, Proof
from intake_hub.text import clean

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def customer_ref(name: str, contact: str) -> CustomerRef:
    """The contact the sender typed, kept for agents to call back on; only ever claimed."""
    contact = clean(contact)
    if _EMAIL.match(contact):
        email = contact.lower()
        return CustomerRef(key=email, name=name, email=email)
    digits = re.sub(r"\D", "", contact)
    if 5 <= len(digits) <= 20 and len(contact) <= 64:
        return CustomerRef(key=f"tel:{digits}", name=name, phone=contact)
    return CustomerRef(key=contact.lower()[:200], name=name)


def to_envelope(
    msg: WebMessageIn,
    *,
    env_id: UUID,
    ticket: str,
    received_at: datetime,
    source: str,
    proven: str | None = None,
    attachments: tuple[AttachmentRef, ...] = (),
) -> Envelope:
    """The envelope for one web form message; its own id is the external id (no provider).

    `proven` is the ticket whose number and access code the message quoted (checked by
    the caller): the only way a form message continues an existing ticket.
    """
    return Envelope(
        id=env_id,
        channel="web",
        source=source,
        external_id=str(env_id),
        ticket=ticket,
        customer=customer_ref(msg.name, msg.contact),
        text=msg.text,
        subject=msg.subject,
        order_id=msg.order_id,
        attachments=attachments,
        proof=Proof(kind="access_code", ticket=proven) if proven else None,
        received_at=received_at,
    )


def reply_envelope(
    number: str,
    text: str,
    *,
    env_id: UUID,
    ticket: str,
    received_at: datetime,
    source: str,
    attachments: tuple[AttachmentRef, ...] = (),
) -> Envelope:
    """The customer's reply from ticket `number`'s status page, its code already checked."""
    return Envelope(
        id=env_id,
        channel="web",
        source=source,
        external_id=str(env_id),
        ticket=ticket,
        # Not a contact: the reply speaks for the ticket's own customer, whom proof names.
        customer=CustomerRef(key=f"ticket:{number}"),
        text=text,
        attachments=attachments,
        proof=Proof(kind="access_code", ticket=number),
        received_at=received_at,
    )
