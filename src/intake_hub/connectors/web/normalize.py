"""Web form input to envelope: pure, no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

from intake_hub.connectors.web.schemas import WebMessageIn
from intake_hub.envelope import CustomerRef, Envelope
from intake_hub.text import clean

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def customer_ref(name: str, contact: str) -> CustomerRef:
    """The web customer, keyed by their email address or phone digits."""
    contact = clean(contact)
    if _EMAIL.match(contact):
        email = contact.lower()
        return CustomerRef(key=email, name=name, email=email)
    digits = re.sub(r"\D", "", contact)
    if 5 <= len(digits) <= 20 and len(contact) <= 64:
        return CustomerRef(key=f"tel:{digits}", name=name, phone=contact)
    return CustomerRef(key=contact.lower()[:200], name=name)


def to_envelope(
    msg: WebMessageIn, *, env_id: UUID, ticket: str, received_at: datetime, source: str
) -> Envelope:
    """The envelope for one web form message; its own id is the external id (no provider)."""
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
        received_at=received_at,
    )
