"""A parsed mail to its envelope: pure, no I/O.

A `From` is a claim anyone can type: the customer is `claimed` and never joins another
customer's ticket unless the connector checked ownership first (`owned`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from intake_hub.connectors.email.parse import Mail
from intake_hub.envelope import AttachmentRef, CustomerRef, Envelope, Proof

CHANNEL = "email"
ORIGINAL = "original.eml"
RFC822 = "message/rfc822"
_SUBJECT_MAX = 200


def external_id(instance: str, message_id: str) -> str:
    """The id persistence dedupes on: the Message-ID within the instance (hashed if long)."""
    found = f"{instance}:{message_id}"
    if len(found) <= 255:
        return found
    return f"{instance}:sha256-{hashlib.sha256(message_id.encode()).hexdigest()}"


def original_ref(digest: str, size: int) -> AttachmentRef:
    """The whole mail as received, kept for audit beside what was taken from it."""
    return AttachmentRef(kind="file", ref=digest, name=ORIGINAL, content_type=RFC822, size=size)


def customer_ref(mail: Mail) -> CustomerRef:
    """The sender as the mail claims them: their address is the key."""
    name = mail.from_name[:200] if mail.from_name else None
    return CustomerRef(
        key=mail.from_address, identity="claimed", name=name, email=mail.from_address
    )


def body_text(mail: Mail, notes: Sequence[str] = ()) -> str:
    """The message text: what was written, then a line per refused file."""
    text = mail.text or mail.subject or "(no text)"
    return "\n".join([text, *notes]) if notes else text


def to_envelope(
    mail: Mail,
    *,
    instance: str,
    env_id: UUID,
    ticket: str,
    received_at: datetime,
    files: Sequence[AttachmentRef] = (),
    notes: Sequence[str] = (),
    proof: Proof | None = None,
) -> Envelope:
    """The envelope of one mail; `files` are stored already (the original first).

    `proof`: why the mail may join a ticket, checked by the caller (a Message-ID the hub
    sent for it, or its number in the subject from the ticket's own address).
    """
    return Envelope(
        id=env_id,
        channel=CHANNEL,
        source=f"{CHANNEL}/{instance}",
        external_id=external_id(instance, mail.message_id),
        ticket=ticket,
        customer=customer_ref(mail),
        text=body_text(mail, notes),
        subject=mail.subject[:_SUBJECT_MAX] or None,
        attachments=tuple(files),
        proof=proof,
        received_at=received_at,
        automatic=mail.automatic is not None,
    )
