"""One transaction's worth of envelopes: read the state once, decide in order, write in sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from intake_hub.envelope import Envelope
from intake_hub.rules.decision import of_envelope
from intake_hub.status import CLOSED_STATUSES, OPEN_STATUSES
from intake_hub.storage import app_events, attachments
from intake_hub.storage.app_events import NewEvent
from intake_hub.storage.customers import (
    CustomerRow,
    Identity,
    find_or_make,
    identity,
    insert_claimants,
)
from intake_hub.storage.models import (
    AppEvent,
    Attachment,
    Event,
    Message,
    Ticket,
    TicketAlias,
)
from intake_hub.storage.outcome import LostRace, Saved
from intake_hub.storage.rowid import row_id
from intake_hub.storage.schema import columns
from intake_hub.storage.sql import Row, Sql
from intake_hub.ticketno import find_numbers

__all__ = ["Batch", "LostRace", "Saved", "row_id"]

OPEN, CLOSED = OPEN_STATUSES, CLOSED_STATUSES

# The columns each insert fills, in row order; their types come from the models.
_TICKET_COLS = (
    "id",
    "number",
    "status",
    "channel",
    "category",
    "priority",
    "tags",
    "team",
    "assignee_id",
    "customer_id",
    "subject",
    "order_id",
    "created_at",
    "updated_at",
    "explanation",
    "source",
    "customer_key",
)
_MESSAGE_COLS = (
    "id",
    "ticket_id",
    "direction",
    "channel",
    "external_id",
    "kind",
    "text",
    "created_at",
    "dedupe_key",
)
_EVENT_COLS = (
    "id",
    "ticket_id",
    "kind",
    "actor",
    "data",
    "created_at",
    "dedupe_key",
)
_ALIAS_COLS = (
    "number",
    "ticket_id",
)
_TICKET_SELECT = (
    "t.id, t.number, t.customer_id, t.channel, t.status, t.assignee_id, t.updated_at, t.source"
)


@dataclass(slots=True)
class _Ticket:
    id: UUID
    number: str
    customer: UUID
    channel: str
    status: str
    assignee: str | None
    updated_at: datetime
    source: str | None = None
    new: bool = False
    touched: bool = False
    reopen_to: str | None = None
    row: dict[str, Any] = field(default_factory=dict)


def _verified(env: Envelope) -> bool:
    return env.customer.identity == "verified"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Batch:
    """Stores a list of envelopes in the caller's transaction; `run` returns one result each."""

    def __init__(
        self, sql: Sql, envs: Sequence[Envelope], window_s: float, *, assume_new: bool = False
    ) -> None:
        self.sql = sql
        self.envs = list(envs)
        # Skip the look-up of stored envelopes: a stored one then clashes on a unique key
        # and the batch raises `LostRace`, to be run again without assuming.
        self.assume_new = assume_new
        self.window = timedelta(seconds=window_s)
        self.now = datetime.now(UTC)
        self.now_db = sql.dt(self.now)
        self.tickets: dict[UUID, _Ticket] = {}
        self.by_number: dict[str, _Ticket] = {}
        self.open: dict[tuple[UUID, str], _Ticket] = {}
        self.messages: list[list[Any]] = []
        self.attachments: list[list[Any]] = []
        self.aliases: list[list[Any]] = []
        self.events: list[list[Any]] = []
        # Events for app backends, in the order the changes happened (the outbox's order).
        self.app_events: list[list[Any]] = []
        # Customers made from claimed contacts: one per ticket, nobody's identity.
        self.claimants: list[CustomerRow] = []

    async def run(self) -> list[Saved]:
        """Store every envelope not stored before; duplicates get the ticket they are on."""
        results: list[Saved | None] = [None] * len(self.envs)
        first: dict[object, int] = {}
        copies: dict[int, int] = {}
        unique: list[int] = []
        for i, env in enumerate(self.envs):
            seen = first.get(env.id, first.get((env.channel, env.external_id)))
            if seen is not None:
                copies[i] = seen
                continue
            first[env.id] = first[(env.channel, env.external_id)] = i
            unique.append(i)

        stored = {} if self.assume_new else await self._stored([self.envs[i] for i in unique])
        fresh: list[int] = []
        for i in unique:
            env = self.envs[i]
            number = stored.get(f"in:{env.id}") or stored.get(f"{env.channel}\0{env.external_id}")
            if number is None:
                fresh.append(i)
            else:
                results[i] = Saved(number, created=False, duplicate=True)

        if fresh:
            envs = [self.envs[i] for i in fresh]
            # A claimed contact is nobody's identity: it never finds, makes or renames one.
            customers = await find_or_make(self.sql, [e for e in envs if _verified(e)], self.now_db)
            await self._load_tickets(envs, customers)
            agents = await self._agents(envs)
            for i in fresh:
                results[i] = self._decide(self.envs[i], customers, agents)
            await self._write()

        for i, j in copies.items():
            original = results[j]
            assert original is not None
            results[i] = Saved(original.ticket, created=False, duplicate=True)
        return [r for r in results if r is not None]

    async def _stored(self, envs: Sequence[Envelope]) -> dict[str, str]:
        if not envs:
            return {}
        head = (
            "SELECT m.dedupe_key, m.channel, m.external_id, t.number FROM message m "
            "JOIN ticket t ON t.id = m.ticket_id WHERE "
        )
        cond, args = self.sql.in_("m.dedupe_key", [f"in:{e.id}" for e in envs], "text")
        parts = [head + cond]
        by_channel: dict[str, list[str]] = {}
        for env in envs:
            by_channel.setdefault(env.channel, []).append(env.external_id)
        for channel, ids in by_channel.items():
            c, a = self.sql.in_("m.external_id", ids, "text")
            parts.append(f"{head}m.channel = ? AND {c}")
            args += [channel, *a]
        # UNION ALL, not OR: each branch uses its own unique index on either backend.
        rows = await self.sql.fetch(" UNION ALL ".join(parts), args)
        found: dict[str, str] = {}
        for key, channel, external_id, number in rows:
            found[key] = number
            if external_id is not None:
                found[f"{channel}\0{external_id}"] = number
        return found

    def _remember(self, row: Row) -> _Ticket:
        sql = self.sql
        tid = sql.to_uuid(row[0])
        ticket = self.tickets.get(tid)
        if ticket is None:
            ticket = self.tickets[tid] = _Ticket(
                id=tid,
                number=row[1],
                customer=sql.to_uuid(row[2]),
                channel=row[3],
                status=row[4],
                assignee=row[5],
                updated_at=sql.to_dt(row[6]),
                source=row[7],
            )
            self.by_number[ticket.number] = ticket
            self._track_open(ticket)
        return ticket

    def _track_open(self, ticket: _Ticket) -> None:
        key = (ticket.customer, ticket.channel)
        current = self.open.get(key)
        if ticket.status in OPEN and (current is None or current.updated_at <= ticket.updated_at):
            self.open[key] = ticket

    async def _load_tickets(
        self, envs: Sequence[Envelope], customers: dict[Identity, CustomerRow]
    ) -> None:
        sql = self.sql
        quoted = sorted({n for env in envs for n in self._quoted(env)})
        if quoted:
            c1, a1 = sql.in_("t.number", quoted, "text")
            c2, a2 = sql.in_("a.number", quoted, "text")
            rows = await sql.fetch(
                f"SELECT a.number, {_TICKET_SELECT} FROM ticket_alias a "
                f"JOIN ticket t ON t.id = a.ticket_id WHERE {c2} "
                f"UNION ALL SELECT t.number, {_TICKET_SELECT} FROM ticket t WHERE {c1}",
                a2 + a1,
            )
            for row in rows:
                self.by_number[row[0]] = self._remember(row[1:])
        known = sorted({c.id for c in customers.values() if not c.new})
        # Only verified customers reach this far: claimed ones are not in `customers`.
        if known:
            cutoff = min(_utc(e.received_at) for e in envs) - self.window
            cond, args = sql.in_("t.customer_id", [sql.uuid(c) for c in known], "uuid")
            rows = await sql.fetch(
                f"SELECT {_TICKET_SELECT} FROM ticket t WHERE {cond} "
                "AND t.status IN ('received', 'in_progress') AND t.updated_at >= ?",
                [*args, sql.dt(cutoff)],
            )
            for row in rows:
                self._remember(row)

    async def _agents(self, envs: Sequence[Envelope]) -> set[str]:
        wanted = sorted({e.route.assignee for e in envs if e.route and e.route.assignee})
        if not wanted:
            return set()
        cond, args = self.sql.in_("id", wanted, "text")
        return {row[0] for row in await self.sql.fetch(f"SELECT id FROM agent WHERE {cond}", args)}

    @staticmethod
    def _quoted(env: Envelope) -> list[str]:
        proven = [env.proof.ticket] if env.proof is not None else []
        return proven + find_numbers(f"{env.subject or ''}\n{env.text}")

    def _decide(
        self, env: Envelope, customers: dict[Identity, CustomerRow], agents: set[str]
    ) -> Saved:
        """The trust model's one enforcement point: which ticket a message may join.

        Proof (the ticket's access code, checked at the edge) joins that ticket, whoever
        sent it. Without proof a claimed identity always starts its own ticket and its
        own customer; a verified one joins its own ticket by number or the open one it
        wrote to within the follow-up window.
        """
        received = _utc(env.received_at)
        proven = self.by_number.get(env.proof.ticket) if env.proof is not None else None
        if proven is not None:
            self._join(env, proven, received)
            return Saved(proven.number, created=False, duplicate=False)
        if not _verified(env):
            c = env.customer
            claimant = CustomerRow(
                row_id(env, "customer"), c.name, c.phone, c.email, verified=False
            )
            self.claimants.append(claimant)
            self._create(env, claimant.id, received, agents)
            return Saved(env.ticket, created=True, duplicate=False)
        customer = customers[identity(env)].id
        target: _Ticket | None = None
        for number in self._quoted(env):
            quoted = self.by_number.get(number)
            # Only the ticket's own customer may add to it by quoting its number.
            if quoted is not None and quoted.customer == customer:
                target = quoted
                break
        if target is None:
            recent = self.open.get((customer, env.channel))
            if (
                recent is not None
                and recent.status in OPEN
                and recent.updated_at >= received - self.window
            ):
                target = recent
        if target is None:
            self._create(env, customer, received, agents)
            return Saved(env.ticket, created=True, duplicate=False)
        self._join(env, target, received)
        return Saved(target.number, created=False, duplicate=False)

    def _create(self, env: Envelope, customer: UUID, received: datetime, agents: set[str]) -> None:
        labels, route = env.labels, env.route
        assignee = route.assignee if route and route.assignee in agents else None
        ticket = _Ticket(
            id=row_id(env, "ticket"),
            number=env.ticket,
            customer=customer,
            channel=env.channel,
            status="in_progress" if assignee else "received",
            assignee=assignee,
            updated_at=received,
            source=env.source,
            new=True,
            row={
                "category": labels.category if labels else None,
                "priority": labels.priority if labels else "normal",
                "tags": list(labels.tags) if labels else [],
                "team": route.team if route else None,
                "subject": env.subject,
                "order_id": env.order_id,
                "created_at": received,
                # Only the first message's: it set the category, priority and team shown.
                "explanation": of_envelope(env),
                "source": env.source,
                "customer_key": env.customer.key,
            },
        )
        self.tickets[ticket.id] = ticket
        self.by_number[ticket.number] = ticket
        self._track_open(ticket)
        self._app_event(env, ticket, "created", app_events.CREATED, _created(env, ticket))
        if assignee:
            handed = {"assignee": assignee, "team": ticket.row["team"], "previous": None}
            self._app_event(env, ticket, "assigned", app_events.ASSIGNED, handed)
        self._messages(env, ticket)
        # One audit row for the new ticket, holding what classify and route decided: each
        # event row costs an insert, two index entries and a foreign-key check.
        data: dict[str, Any] = {"number": env.ticket, "channel": env.channel}
        if labels:
            data["labels"] = labels.model_dump(mode="json")
        if route:
            assigned: dict[str, Any] = {"team": route.team, "assignee": assignee}
            assigned["reasons"] = list(route.reasons)
            if route.assignee and not assignee:
                assigned["unknown_assignee"] = route.assignee
            data["route"] = assigned
        self._event(env, ticket, "created", data)

    def _join(self, env: Envelope, ticket: _Ticket, received: datetime) -> None:
        if ticket.status in CLOSED:
            reopened_from = ticket.status
            ticket.status = "in_progress" if ticket.assignee else "received"
            ticket.reopen_to = ticket.status
            self._event(env, ticket, "reopened", {"from": reopened_from, "to": ticket.status})
            data = {"previous": reopened_from, "by": "customer"}
            self._app_event(env, ticket, "reopened", app_events.STATUS_CHANGED, data)
        ticket.updated_at = max(ticket.updated_at, received)
        self.tickets[ticket.id] = ticket
        self._track_open(ticket)
        if env.ticket != ticket.number:
            self.aliases.append([env.ticket, self.sql.uuid(ticket.id)])
            self.by_number[env.ticket] = ticket
        self._messages(env, ticket)
        self._event(env, ticket, "message", {"number": env.ticket, "channel": env.channel})
        ticket.touched = True

    def _messages(self, env: Envelope, ticket: _Ticket) -> None:
        sql = self.sql
        tid = sql.uuid(ticket.id)
        received = sql.dt(env.received_at)
        self.messages.append(
            [
                sql.uuid(env.id),
                tid,
                "in",
                env.channel,
                env.external_id,
                None,
                env.text,
                received,
                f"in:{env.id}",
            ]
        )
        if env.attachments:
            self.attachments += attachments.rows(sql, env, self.now)
        if env.reply is not None and env.reply.kind != "none":
            # Stamped with the message it answers (listed after it by direction), so a
            # message replayed days later does not put its answer after newer messages.
            self.messages.append(
                [
                    sql.uuid(row_id(env, "reply")),
                    tid,
                    "out",
                    env.channel,
                    None,
                    env.reply.kind,
                    env.reply.text,
                    received,
                    f"reply:{env.id}",
                ]
            )
            answer = {
                "id": str(row_id(env, "reply")),
                "text": env.reply.text,
                "kind": env.reply.kind,
                "by": "auto",
                "agent": None,
            }
            self._app_event(env, ticket, "reply", app_events.REPLIED, {"message": answer})

    def _event(self, env: Envelope, ticket: _Ticket, kind: str, data: dict[str, Any]) -> None:
        sql = self.sql
        self.events.append(
            [
                sql.uuid(row_id(env, f"event:{kind}")),
                sql.uuid(ticket.id),
                kind,
                "system",
                sql.json(data),
                self.now_db,
                f"{env.id}:{kind}",
            ]
        )

    def _app_event(
        self, env: Envelope, ticket: _Ticket, step: str, kind: str, data: dict[str, Any]
    ) -> None:
        if not app_events.wanted(ticket.source):
            return
        assert ticket.source is not None
        event = NewEvent(
            f"{step}:{env.id}",
            ticket.source,
            ticket.id,
            ticket.number,
            kind,
            ticket.status,
            self.now,
            data,
        )
        self.app_events.append(app_events.row(self.sql, event))

    async def _write(self) -> None:
        sql = self.sql
        await insert_claimants(sql, self.claimants, self.now_db)
        # Rows go in sorted by their unique key, so two writers lock in the same order.
        # Every row below derives its keys from its envelope: a clash means another writer
        # (or an earlier delivery) stored that envelope, and `insert_new` raises LostRace.
        new = sorted((t for t in self.tickets.values() if t.new), key=lambda t: t.number)
        if new:
            await sql.insert_new(
                "ticket",
                columns(Ticket, *_TICKET_COLS),
                [
                    [
                        sql.uuid(t.id),
                        t.number,
                        t.status,
                        t.channel,
                        t.row["category"],
                        t.row["priority"],
                        sql.json(t.row["tags"]),
                        t.row["team"],
                        t.assignee,
                        sql.uuid(t.customer),
                        t.row["subject"],
                        t.row["order_id"],
                        sql.dt(t.row["created_at"]),
                        sql.dt(t.updated_at),
                        None if t.row["explanation"] is None else sql.json(t.row["explanation"]),
                        t.row["source"],
                        t.row["customer_key"],
                    ]
                    for t in new
                ],
            )
        self.messages.sort(key=lambda m: m[-1])
        await sql.insert_new("message", columns(Message, *_MESSAGE_COLS), self.messages)
        self.attachments.sort(key=lambda a: a[0])
        await sql.insert_new(
            "attachment", columns(Attachment, *attachments.COLUMNS), self.attachments
        )
        self.aliases.sort(key=lambda a: a[0])
        await sql.insert("ticket_alias", columns(TicketAlias, *_ALIAS_COLS), self.aliases)
        self.events.sort(key=lambda e: e[-1])
        await sql.insert_new("event", columns(Event, *_EVENT_COLS), self.events)
        # Not sorted: their ids keep the order of the changes, which the sender keeps.
        await sql.insert_new("app_event", columns(AppEvent, *app_events.COLUMNS), self.app_events)
        old = sorted(
            (t for t in self.tickets.values() if t.touched and not t.new),
            key=lambda t: t.id,
        )
        await sql.executemany(
            f"UPDATE ticket SET updated_at = {sql.greatest}(updated_at, ?) WHERE id = ?",
            [[sql.dt(t.updated_at), sql.uuid(t.id)] for t in old],
        )
        await sql.executemany(
            "UPDATE ticket SET status = ?, closed_at = NULL "
            "WHERE id = ? AND status IN ('resolved', 'closed')",
            [[t.reopen_to, sql.uuid(t.id)] for t in old if t.reopen_to],
        )


def _created(env: Envelope, ticket: _Ticket) -> dict[str, Any]:
    """What `ticket.created` tells the app: the first message's id and how it was triaged."""
    c = env.customer
    return {
        "channel": env.channel,
        "message_id": env.external_id,
        "category": ticket.row["category"],
        "priority": ticket.row["priority"],
        "tags": ticket.row["tags"],
        "team": ticket.row["team"],
        "assignee": ticket.assignee,
        "customer": {"id": c.key, "name": c.name},
        "order_id": env.order_id,
    }
