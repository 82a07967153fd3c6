"""The trust model where the writer enforces it: claims never join, proof always does."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from intake_hub.envelope import Proof
from intake_hub.storage.models import Customer, CustomerIdentity, Message, Ticket, TicketAlias
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import pretty

from .conftest import EnvFactory


async def test_claimed_contact_never_joins_or_renames_the_owner(
    database: str, make_env: EnvFactory
) -> None:
    """A claim on a verified customer's key starts its own ticket and customer; theirs is intact."""
    writer = TicketWriter()
    owner = make_env("我的退款呢", customer="alice@example.com", channel="web", name="Alice")
    await writer.save(owner)
    stranger = make_env(
        f"关于 {pretty(owner.ticket)} 改地址",
        customer="alice@example.com",
        channel="web",
        name="Mallory",
        identity="claimed",
    )
    saved = await writer.save(stranger)
    assert saved.created and saved.ticket == stranger.ticket
    mine = await Ticket.get(number=owner.ticket).prefetch_related("customer")
    theirs = await Ticket.get(number=stranger.ticket).prefetch_related("customer")
    assert mine.customer.name == "Alice" and mine.customer.verified
    assert theirs.customer.id != mine.customer.id
    assert (theirs.customer.name, theirs.customer.verified) == ("Mallory", False)
    assert await Message.filter(ticket_id=mine.id).count() == 2  # the message and its ack
    assert not await TicketAlias.filter(number=stranger.ticket).exists()


async def test_each_claimed_message_is_its_own_ticket(database: str, make_env: EnvFactory) -> None:
    """Two claimed messages from one contact inside the follow-up window make two tickets."""
    writer = TicketWriter()
    first = make_env(customer="Bob@Example.com", channel="web", identity="claimed")
    later = make_env(
        customer="Bob@Example.com",
        channel="web",
        identity="claimed",
        received_at=first.received_at + timedelta(minutes=1),
    )
    a, b = await asyncio.gather(writer.save(first), writer.save(later))
    assert a.created and b.created and a.ticket != b.ticket
    assert await Customer.filter(verified=False).count() == 2
    assert not await CustomerIdentity.filter(channel="web").exists()


async def test_proof_joins_and_reopens_the_proven_ticket(
    database: str, make_env: EnvFactory
) -> None:
    """A claimed reply carrying the ticket's proof joins it, reopens it, and makes no customer."""
    writer = TicketWriter()
    first = make_env(customer="carol@example.com", channel="web", identity="claimed")
    await writer.save(first)
    await Ticket.filter(number=first.ticket).update(status="resolved")
    reply = make_env(
        "还是坏的",
        customer="carol@example.com",
        channel="web",
        identity="claimed",
        proof=Proof(kind="access_code", ticket=first.ticket),
        reply=None,
    )
    saved = await writer.save(reply)
    assert (saved.ticket, saved.created) == (first.ticket, False)
    ticket = await Ticket.get(number=first.ticket)
    assert ticket.status == "received"
    assert await Message.filter(ticket_id=ticket.id, direction="in").count() == 2
    assert await Customer.all().count() == 1
    assert (await TicketAlias.get(number=reply.ticket)).ticket_id == ticket.id  # type: ignore[attr-defined]


async def test_proof_in_the_same_batch_as_its_ticket(database: str, make_env: EnvFactory) -> None:
    """A proven reply stored in the same batch as the ticket it proves still joins it."""
    writer = TicketWriter()
    first = make_env(customer="dan@example.com", channel="web", identity="claimed")
    reply = make_env(
        "补充一下",
        customer="x@example.com",
        channel="web",
        identity="claimed",
        proof=Proof(kind="access_code", ticket=first.ticket),
    )
    a, b = await asyncio.gather(writer.save(first), writer.save(reply))
    assert a.created and b.ticket == first.ticket and not b.created


async def test_claimed_message_is_stored_once(database: str, make_env: EnvFactory) -> None:
    """A redelivered claimed message makes no second ticket and no second customer."""
    writer = TicketWriter()
    env = make_env(customer="erin@example.com", channel="web", identity="claimed")
    await writer.save(env)
    again = await writer.save(env)
    assert again.duplicate and again.ticket == env.ticket
    assert await Ticket.all().count() == 1 and await Customer.all().count() == 1
