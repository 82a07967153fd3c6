"""The shared access_token row: read by everyone, written only by the holder of its lease.

The lease is taken with one conditional UPDATE (lease free *and* token missing, stale or
the one just rejected). That statement is atomic on both backends (PostgreSQL re-checks
the WHERE on the row it waited for; SQLite runs one writer at a time), so of any number
of racing processes exactly one gets a row count of 1 and fetches. No transaction is
held across the HTTP fetch: a `SELECT ... FOR UPDATE` or `BEGIN IMMEDIATE` would keep
the row (on SQLite the whole database) locked for a network round trip, and a fetcher
that dies mid-fetch would need the connection to drop before anyone could take over;
an expired lease lets the next reader take over on its own.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from intake_hub.connectors.wechat.stores import Token
from intake_hub.storage.models import WeChatToken


async def read(app_id: str, now: datetime) -> Token:
    """The account's current row; `leased` while a fetcher holds an unexpired lease."""
    row = await WeChatToken.get_or_none(app_id=app_id)
    if row is None:
        return Token(None, None, leased=False)
    leased = row.lease_until is not None and row.lease_until > now
    return Token(row.token, row.expires_at, leased)


async def try_lease(
    app_id: str,
    owner: str,
    now: datetime,
    lease_s: float,
    fresh_until: datetime,
    rejected: str | None = None,
) -> bool:
    """Become the one fetcher, if the token needs fetching and nobody else is fetching it.

    The token needs fetching when there is none, it expires before `fresh_until`, or it
    is `rejected` (WeChat said 40001/42001 to it). A token someone replaced meanwhile
    does not: the caller reads the new one.
    """
    with contextlib.suppress(IntegrityError):
        await WeChatToken.create(app_id=app_id)
    needed = Q(token__isnull=True) | Q(expires_at__isnull=True) | Q(expires_at__lt=fresh_until)
    if rejected is not None:
        needed |= Q(token=rejected)
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    taken = await WeChatToken.filter(Q(app_id=app_id), needed, free).update(
        lease_owner=owner, lease_until=now + timedelta(seconds=lease_s)
    )
    return taken == 1


async def store(app_id: str, owner: str, token: str, expires_at: datetime, now: datetime) -> bool:
    """Save a fetched token and end the lease; False if the lease was lost meanwhile."""
    done = await WeChatToken.filter(app_id=app_id, lease_owner=owner).update(
        token=token, expires_at=expires_at, fetched_at=now, lease_owner=None, lease_until=None
    )
    return done == 1


async def release(app_id: str, owner: str) -> None:
    """Give the lease up after a failed fetch, so the next caller may try at once."""
    await WeChatToken.filter(app_id=app_id, lease_owner=owner).update(
        lease_owner=None, lease_until=None
    )
