"""A batch's customers: verified identities found, linked by union id or made; claimants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from intake_hub.envelope import Envelope
from intake_hub.ids import uuid7
from intake_hub.storage.models import Customer, CustomerIdentity
from intake_hub.storage.rowid import row_id
from intake_hub.storage.schema import columns
from intake_hub.storage.sql import Sql

Identity = tuple[str, str]  # channel and customer key

# The columns each insert fills, in row order; their types come from the models.
_CUSTOMER_COLS = (
    "id",
    "name",
    "phone",
    "email",
    "vip",
    "created_at",
    "verified",
)
_IDENTITY_COLS = (
    "channel",
    "key",
    "customer_id",
    "union_id",
)


@dataclass(slots=True)
class CustomerRow:
    """A customer as a batch holds it: read or made, and whether it must be written."""

    id: UUID
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    new: bool = False
    changed: bool = False
    verified: bool = True


def identity(env: Envelope) -> Identity:
    """The identity an envelope's customer writes from."""
    return env.channel, env.customer.key


async def find_or_make(
    sql: Sql, envs: Sequence[Envelope], now_db: Any
) -> dict[Identity, CustomerRow]:
    """The customer of each envelope's identity; writes the new ones and what changed."""
    if not envs:
        return {}
    found, unions = await _known(sql, envs)
    linked = await _by_union(sql, envs, found)
    fresh: dict[Identity, str | None] = {}
    learned: dict[Identity, str] = {}
    for env in envs:
        ident, union = identity(env), env.customer.union_id
        customer = found.get(ident)
        if customer is None:
            # The same person on another of the merchant's accounts: their customer.
            customer = linked.get(union) if union else None
            if customer is None:
                customer = CustomerRow(row_id(env, "customer"), new=True)
                if union:
                    linked[union] = customer
            found[ident] = customer
            fresh[ident] = unions[ident] = union
        elif union and not unions.get(ident):
            learned[ident] = unions[ident] = union
        for attr in ("name", "phone", "email"):
            value = getattr(env.customer, attr)
            if value and value != getattr(customer, attr):
                setattr(customer, attr, value)
                customer.changed = True
    await _store(sql, found, fresh, learned, now_db)
    return found


async def _known(
    sql: Sql, envs: Sequence[Envelope]
) -> tuple[dict[Identity, CustomerRow], dict[Identity, str | None]]:
    """The customers of the identities already stored, and each identity's union id."""
    by_channel: dict[str, dict[str, None]] = {}
    for env in envs:
        by_channel.setdefault(env.channel, {})[env.customer.key] = None
    parts: list[str] = []
    args: list[Any] = []
    for channel, keys in by_channel.items():
        c, a = sql.in_("ci.key", list(keys), "text")
        parts.append(
            "SELECT ci.channel, ci.key, c.id, c.name, c.phone, c.email, ci.union_id "
            "FROM customer_identity ci JOIN customer c ON c.id = ci.customer_id "
            f"WHERE ci.channel = ? AND {c}"
        )
        args += [channel, *a]
    rows = await sql.fetch(" UNION ALL ".join(parts), args)
    found: dict[Identity, CustomerRow] = {}
    unions: dict[Identity, str | None] = {}
    for ch, key, cid, name, phone, email, union in rows:
        found[(ch, key)] = CustomerRow(sql.to_uuid(cid), name, phone, email)
        unions[(ch, key)] = union
    return found, unions


async def _by_union(
    sql: Sql, envs: Sequence[Envelope], found: dict[Identity, CustomerRow]
) -> dict[str, CustomerRow]:
    """The customers already known under the union id of an envelope whose identity is new."""
    wanted = sorted(
        {e.customer.union_id for e in envs if e.customer.union_id and identity(e) not in found}
    )
    if not wanted:
        return {}
    cond, args = sql.in_("ci.union_id", wanted, "text")
    rows = await sql.fetch(
        "SELECT ci.union_id, c.id, c.name, c.phone, c.email "
        "FROM customer_identity ci JOIN customer c ON c.id = ci.customer_id "
        f"WHERE {cond} ORDER BY ci.id",
        args,
    )
    # One object per customer, so changes made through either identity are not split.
    by_id = {c.id: c for c in found.values()}
    linked: dict[str, CustomerRow] = {}
    for union, cid, name, phone, email in rows:
        uid = sql.to_uuid(cid)
        linked.setdefault(union, by_id.setdefault(uid, CustomerRow(uid, name, phone, email)))
    return linked


async def _store(
    sql: Sql,
    found: dict[Identity, CustomerRow],
    fresh: dict[Identity, str | None],
    learned: dict[Identity, str],
    now_db: Any,
) -> None:
    """Insert the new customers and identities, then record learned union ids and changes."""
    if fresh:
        made_for = {c.id: c for c in found.values() if c.new}
        # A clash (the connector or another writer made the identity first) raises LostRace.
        await sql.insert_new(
            "customer",
            columns(Customer, *_CUSTOMER_COLS),
            [
                [sql.uuid(c.id), c.name, c.phone, c.email, False, now_db, True]
                for _, c in sorted(made_for.items())
            ],
        )
        await sql.insert_new(
            "customer_identity",
            columns(CustomerIdentity, *_IDENTITY_COLS),
            [[ch, key, sql.uuid(found[ch, key].id), u] for (ch, key), u in sorted(fresh.items())],
        )
    await sql.executemany(
        "UPDATE customer_identity SET union_id = ? WHERE channel = ? AND key = ? "
        "AND union_id IS NULL",
        [[u, ch, key] for (ch, key), u in sorted(learned.items())],
    )
    changed = sorted(
        {c.id: c for c in found.values() if c.changed and not c.new}.values(),
        key=lambda c: c.id,
    )
    await sql.executemany(
        "UPDATE customer SET name = ?, phone = ?, email = ? WHERE id = ?",
        [[c.name, c.phone, c.email, sql.uuid(c.id)] for c in changed],
    )


async def insert_claimants(sql: Sql, claimants: Sequence[CustomerRow], now_db: Any) -> None:
    """Insert the customers made for claimed contacts: unverified, nobody's identity."""
    await sql.insert_new(
        "customer",
        columns(Customer, *_CUSTOMER_COLS),
        [
            [sql.uuid(c.id), c.name, c.phone, c.email, False, now_db, False]
            for c in sorted(claimants, key=lambda c: c.id)
        ],
    )


@dataclass(frozen=True, slots=True)
class Profile:
    """What a channel that vouches for its customer knows of them; None: not told."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    vip: bool | None = None


async def update_verified(channel: str, key: str, profile: Profile) -> UUID:
    """Record `profile` for the verified identity (channel, key), made if new; its customer."""
    told = {k: v for k, v in _fields(profile).items() if v is not None}
    while True:
        found = await CustomerIdentity.get_or_none(channel=channel, key=key)
        if found is not None:
            if told:
                await Customer.filter(id=found.customer_id).update(**told)  # type: ignore[attr-defined]
            return found.customer_id  # type: ignore[attr-defined, no-any-return]
        customer_id = uuid7()
        try:
            async with in_transaction():
                await Customer.create(id=customer_id, verified=True, **told)
                await CustomerIdentity.create(channel=channel, key=key, customer_id=customer_id)
            return customer_id
        except IntegrityError:
            # Made at the same moment by another request or the batch writer: update theirs.
            continue


def _fields(profile: Profile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "phone": profile.phone,
        "email": profile.email,
        "vip": profile.vip,
    }


async def is_vip(channel: str, key: str) -> bool:
    """Whether the customer of identity (channel, key) is marked VIP; False when unknown."""
    found = await CustomerIdentity.get_or_none(channel=channel, key=key).select_related("customer")
    return found is not None and found.customer.vip
