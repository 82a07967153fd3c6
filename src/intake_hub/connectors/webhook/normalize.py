"""App events to envelopes and customer profiles: pure, no I/O.

The app's user id is a verified identity: the app vouches for it under its signature.
It is scoped by instance (`<name>:<id>`), since two apps may both have a user `42`
and neither may speak for the other's (docs/connectors/app_webhook.md, trust model).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from intake_hub.connectors.webhook.schemas import AppCustomer, MessageData
from intake_hub.envelope import AttachmentRef, CustomerRef, Envelope, Proof


def customer_key(instance: str, app_id: str) -> str:
    """The identity key of the app's user `app_id` on instance `instance`."""
    return f"{instance}:{app_id}"


def external_id(instance: str, webhook_id: str) -> str:
    """The message id persistence dedupes on: the `webhook-id`, scoped by instance."""
    return f"{instance}:{webhook_id}"


def tags(customer: AppCustomer) -> tuple[str, ...]:
    """The customer's tags as rules match them: lower case, each once, in the app's order."""
    return tuple(dict.fromkeys(t.lower() for t in customer.tags or ()))


def customer_ref(instance: str, customer: AppCustomer) -> CustomerRef:
    """The app's user as the envelope names them: verified, with what the app told us."""
    return CustomerRef(
        key=customer_key(instance, customer.id),
        identity="verified",
        name=customer.name or None,
        phone=customer.phone or None,
        email=customer.email.lower() if customer.email else None,
        tags=tags(customer),
    )


def attachment_ref(
    url: str, name: str, content_type: str, size: int, *, fetch: bool = False
) -> AttachmentRef:
    """A file the app holds: `remote` to fetch (connectors/webhook/files.py), else a link."""
    kind = "remote" if fetch else "link"
    return AttachmentRef(kind=kind, ref=url, name=name, content_type=content_type, size=size)


def to_envelope(
    data: MessageData,
    *,
    instance: str,
    webhook_id: str,
    env_id: UUID,
    ticket: str,
    received_at: datetime,
    owned: str | None = None,
    vip: bool = False,
    fetch: bool = False,
) -> Envelope:
    """The envelope of one `message.created` event.

    `owned` is the ticket `data.ticket` named, once the caller checked that it is this
    same customer's: the message then joins it. Otherwise the verified identity decides,
    as for any follow-up (its open ticket within the follow-up window, or a new one).
    `vip`: the stored profile is marked VIP and the app sent no tags this time.
    `fetch`: the instance allows some attachment hosts, so files are fetched, not linked.
    """
    customer = customer_ref(instance, data.customer)
    if vip and "vip" not in customer.tags:
        customer = customer.model_copy(update={"tags": (*customer.tags, "vip")})
    return Envelope(
        id=env_id,
        channel="webhook",
        source=f"webhook/{instance}",
        external_id=external_id(instance, webhook_id),
        ticket=ticket,
        customer=customer,
        text=data.text,
        order_id=data.order_id or None,
        attachments=tuple(
            attachment_ref(str(a.url), a.name, a.content_type, a.size, fetch=fetch)
            for a in data.attachments
        ),
        proof=Proof(kind="owner", ticket=owned) if owned else None,
        received_at=received_at,
    )
