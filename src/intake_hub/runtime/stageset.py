"""The stage functions bound to their rules and resources, as the pipeline runs them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from intake_hub.access import Links
from intake_hub.envelope import Envelope
from intake_hub.metrics import Metrics
from intake_hub.rules import RuleSet
from intake_hub.stages import STAGE_NAMES, StageFn
from intake_hub.stages.classifier import classify
from intake_hub.stages.persist import persist
from intake_hub.stages.responder import (
    ReplyGuard,
    TicketLookup,
    open_tickets_text,
    respond,
    status_notice,
)
from intake_hub.stages.router import route
from intake_hub.status import OpenTicket
from intake_hub.storage import db
from intake_hub.storage.replies import DbReplyGuard, DbTicketLookup
from intake_hub.storage.roster import DbRoster
from intake_hub.storage.writer import TicketWriter


class StageSet:
    """The stage functions bound to their rules and resources; rules can be swapped live."""

    def __init__(
        self,
        rules: RuleSet,
        links: Links,
        roster: DbRoster,
        writer: TicketWriter,
        metrics: Metrics,
        lookup: TicketLookup | None = None,
        guard: ReplyGuard | None = None,
    ) -> None:
        self.rules = rules
        self._links = links
        self._roster = roster
        self._lookup = lookup or DbTicketLookup()
        self._guard = guard or DbReplyGuard()
        self._writer = writer
        self._metrics = metrics

    def tickets_text(self, tickets: Sequence[OpenTicket]) -> str | None:
        """Open tickets as the current reply rules word them, in their default language."""
        replies = self.rules.replies
        return open_tickets_text(tickets, replies, self._links, replies.default_lang)

    def notice(self, number: str, status: str, first_text: str) -> str | None:
        """The customer's notice of a status change, from the current reply rules."""
        return status_notice(self.rules.replies, self._links, number, status, first_text)

    async def classify(self, env: Envelope) -> Envelope:
        """Label the message from the current classifier rules."""
        return await classify(env, self.rules.classifier, self.rules.version)

    async def respond(self, env: Envelope) -> Envelope:
        """Choose the automatic reply."""
        return await respond(
            env,
            self.rules.replies,
            self._links,
            faq=self.rules.faq,
            tickets=self._lookup,
            guard=self._guard,
        )

    async def route(self, env: Envelope) -> Envelope:
        """Pick the team and agent."""
        return await route(env, self.rules.routing, self._roster)

    async def persist(self, env: Envelope) -> Envelope:
        """Store the ticket; count it once, however often it is redelivered."""
        return await persist(env, self._writer, self._stored)

    def _stored(self, env: Envelope) -> None:
        self._metrics.stored.labels(env.channel).inc()
        lag = (datetime.now(UTC) - env.received_at).total_seconds()
        self._metrics.end_to_end.labels(env.channel).observe(lag)

    def functions(self) -> dict[str, StageFn]:
        """The stage functions by stage name, each waiting out a database outage."""
        return {name: _patient(getattr(self, name)) for name in STAGE_NAMES}


def _patient(stage: StageFn) -> StageFn:
    # Any stage may read the database (roster, reply cap, ticket lookup); an outage must
    # hold its message unacked, not spend the bus's retries and park it as poison.
    async def run(env: Envelope) -> Envelope | None:
        return await db.patiently(lambda: stage(env))

    return run
