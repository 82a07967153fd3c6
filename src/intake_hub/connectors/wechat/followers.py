"""WeChat followers: a customer's follow state on their wechat identity, and their open tickets.

Follow and unfollow carry the event's own time, and a change applies only when it is at
least as new as both recorded times, so a WeChat retry or a late delivery of an old event
never undoes a newer one. The identity is made when missing, its uniqueness on (channel,
key) deciding between racers: whoever loses updates the winner's row instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from intake_hub.ids import uuid7
from intake_hub.status import OpenTicket
from intake_hub.storage.models import Customer, CustomerIdentity, Ticket

CHANNEL = "wechat"
OPEN = ("received", "in_progress")


def _in_order(at: datetime) -> Q:
    return (Q(subscribed_at__isnull=True) | Q(subscribed_at__lte=at)) & (
        Q(unsubscribed_at__isnull=True) | Q(unsubscribed_at__lte=at)
    )


async def _union_customer(union_id: str | None) -> Any:
    """The customer who already has an identity with this union id, or None."""
    if not union_id:
        return None
    found = (
        await CustomerIdentity.filter(union_id=union_id)
        .order_by("id")
        .limit(1)
        .values_list("customer_id", flat=True)
    )
    return found[0] if found else None


async def _create(openid: str, union_id: str | None, state: dict[str, Any]) -> bool:
    """Make the identity (and its customer unless the union id names one); False if it exists."""
    try:
        async with in_transaction():
            customer_id = await _union_customer(union_id)
            if customer_id is None:
                customer_id = uuid7()
                await Customer.create(id=customer_id)
            await CustomerIdentity.create(
                channel=CHANNEL, key=openid, customer_id=customer_id, union_id=union_id, **state
            )
    except IntegrityError:
        return False
    return True


async def _mark(openid: str, union_id: str | None, at: datetime, state: dict[str, Any]) -> None:
    # Two rounds: the first insert can lose to a writer that made the identity meanwhile.
    for _ in range(2):
        mine = CustomerIdentity.filter(channel=CHANNEL, key=openid)
        if union_id:
            await mine.filter(union_id__isnull=True).update(union_id=union_id)
        if await mine.filter(_in_order(at)).update(**state):
            return
        if await _create(openid, union_id, state):
            return
    # The identity exists and already records a newer event: nothing to change.


async def follow(openid: str, union_id: str | None, at: datetime) -> None:
    """A (re-)subscribe at `at`: the customer exists, and any unsubscribed mark is cleared."""
    await _mark(openid, union_id, at, {"subscribed_at": at, "unsubscribed_at": None})


async def unfollow(openid: str, union_id: str | None, at: datetime) -> None:
    """An unsubscribe at `at`: mark the identity, so nothing more is sent to it."""
    await _mark(openid, union_id, at, {"unsubscribed_at": at})


async def open_tickets(openid: str, limit: int = 20) -> list[OpenTicket]:
    """The open tickets of the customer behind this openid (every channel), newest first."""
    rows = (
        await Ticket.filter(
            customer__identities__channel=CHANNEL,
            customer__identities__key=openid,
            status__in=OPEN,
        )
        .order_by("-updated_at", "-number")
        .limit(limit)
        .values("number", "status", "updated_at")
    )
    return [OpenTicket(r["number"], r["status"], r["updated_at"]) for r in rows]


async def identity(openid: str) -> CustomerIdentity | None:
    """The wechat identity of this openid (for inspection and tests)."""
    return await CustomerIdentity.get_or_none(channel=CHANNEL, key=openid)
