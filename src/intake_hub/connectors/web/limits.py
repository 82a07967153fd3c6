"""The web channel's abuse limits: who may post how often, and how many codes may be guessed.

Every message (a new ticket or a reply) counts against its client address and against
its claimed contact (a new ticket) or its ticket (a reply). Every access code checked
counts against the address and the ticket, and is given back when it was right; so a
guesser is stopped, and a customer opening their own page never is. While the pipeline
is behind by `max_backlog` messages, web messages wait outside (503) rather than in the
queues the waited-on channels (WeChat's 5-second answers) share.

A post's address token and its code attempt are taken before its body is read, so a
client past either limit is refused without sending us its files; a request that never
got as far as counting (its body refused, or no code in it checked) gives them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, PositiveInt

from intake_hub.connectors.base import Core, Rate
from intake_hub.ratelimit import Limit

# Retry-After while the pipeline is behind: about how long a backlog takes to drain.
BUSY_RETRY_S = 5

Reason = Literal["rate_limited", "busy"]


class WebLimits(BaseModel):
    """`limits:` in `connectors/web.yaml`; the defaults suit one merchant's shop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Generous: mobile carriers put thousands of customers behind one address (CGNAT).
    messages_per_ip: Rate = Rate(count=120, per="minute", burst=60)
    messages_per_contact: Rate = Rate(count=10, per="hour", burst=5)
    replies_per_ticket: Rate = Rate(count=30, per="hour", burst=10)
    wrong_codes_per_ip: Rate = Rate(count=30, per="hour", burst=10)
    # 40-bit codes at this rate take millions of years; a locked ticket reopens in minutes.
    wrong_codes_per_ticket: Rate = Rate(count=20, per="hour", burst=10)
    # Files, counted one by one: per address, and per customer (a new ticket's contact,
    # a reply's ticket).
    files_per_ip: Rate = Rate(count=200, per="day", burst=50)
    files_per_customer: Rate = Rate(count=30, per="day", burst=20)
    max_backlog: PositiveInt = 5000


class Throttled(Exception):
    """Refused for now: too many requests from this client, or the pipeline is behind."""

    def __init__(self, reason: Reason, wait: float, wording: str | None = None) -> None:
        super().__init__(reason)
        self.reason: Reason = reason
        self.retry_after = max(1, math.ceil(wait))
        # The i18n key of the page's explanation.
        self.wording = wording or reason

    @property
    def status(self) -> int:
        """429 for this client's own excess, 503 when the service is behind for everyone."""
        return 503 if self.reason == "busy" else 429

    @property
    def headers(self) -> dict[str, str]:
        """`Retry-After`, whole seconds."""
        return {"Retry-After": str(self.retry_after)}


@dataclass
class Held:
    """A client's message token taken before its body is read; kept once the message counts."""

    key: str
    limit: Limit
    kept: bool = False


@dataclass
class WebGuard:
    """Applies one web instance's limits through the core's shared buckets."""

    source: str
    config: WebLimits
    core: Core

    def __post_init__(self) -> None:
        c = self.config
        self._per_ip = c.messages_per_ip.limit()
        self._per_contact = c.messages_per_contact.limit()
        self._per_ticket = c.replies_per_ticket.limit()
        self._codes_ip = c.wrong_codes_per_ip.limit()
        self._codes_ticket = c.wrong_codes_per_ticket.limit()
        self._files_ip = c.files_per_ip.limit()
        self._files_customer = c.files_per_customer.limit()

    def hold(self, request: web.BaseRequest) -> Held:
        """Take this client's message token before reading its body; 429 when it has none."""
        held = Held(f"{self.source}:ip:{self.core.client(request)}", self._per_ip)
        self._take(held.key, held.limit)
        return held

    def release(self, held: Held) -> None:
        """Give back a held token the request never came to count (its body was refused)."""
        if not held.kept:
            held.kept = True
            self._give_back(held.key, held.limit)

    def message(self, contact: str, held: Held) -> None:
        """Count a new ticket's message from `contact` (its normalised key)."""
        self._admit()
        held.kept = True
        self._take(f"{self.source}:contact:{contact}", self._per_contact)

    def reply(self, number: str, held: Held) -> None:
        """Count a customer's message onto ticket `number`."""
        self._admit()
        held.kept = True
        self._take(f"{self.source}:replies:{number}", self._per_ticket)

    def files(self, request: web.BaseRequest, customer: str, count: int) -> None:
        """Count `count` files from this client for `customer`; all or none are taken."""
        keys = (
            (f"{self.source}:files-ip:{self.core.client(request)}", self._files_ip),
            (f"{self.source}:files:{customer}", self._files_customer),
        )
        taken: list[tuple[str, Limit]] = []
        try:
            for _ in range(count):
                for key, limit in keys:
                    self._take(key, limit)
                    taken.append((key, limit))
        except Throttled as exc:
            for key, limit in taken:
                self._give_back(key, limit)
            raise Throttled("rate_limited", exc.retry_after, "too_many_files") from None

    def code_attempt(self, request: web.BaseRequest, number: str) -> None:
        """Count a code checked against `number` (raw, so unknown numbers count too)."""
        ip_key, ticket_key = self._code_keys(request, number)
        try:
            self._take(ip_key, self._codes_ip)
            try:
                self._take(ticket_key, self._codes_ticket)
            except Throttled:
                self._give_back(ip_key, self._codes_ip)
                raise
        except Throttled as exc:
            raise Throttled("rate_limited", exc.retry_after, "too_many_codes") from None

    def code_was_right(self, request: web.BaseRequest, number: str) -> None:
        """A right code, or none checked, does not count: give back what `code_attempt` took."""
        ip_key, ticket_key = self._code_keys(request, number)
        self._give_back(ip_key, self._codes_ip)
        self._give_back(ticket_key, self._codes_ticket)

    def _code_keys(self, request: web.BaseRequest, number: str) -> tuple[str, str]:
        # Not per instance: a ticket's code is the same whichever web instance checks it.
        return f"web:code-ip:{self.core.client(request)}", f"web:code-ticket:{number[:40]}"

    def _admit(self) -> None:
        if self.core.backlog() >= self.config.max_backlog:
            self.core.metrics.rejected.labels("web", "busy").inc()
            raise Throttled("busy", BUSY_RETRY_S)

    def _take(self, key: str, limit: Limit) -> None:
        buckets = self.core.limits
        if buckets is None:
            return
        wait = buckets.take(key, limit)
        if wait > 0:
            self.core.metrics.rejected.labels("web", "rate_limited").inc()
            raise Throttled("rate_limited", wait)

    def _give_back(self, key: str, limit: Limit) -> None:
        if self.core.limits is not None:
            self.core.limits.give_back(key, limit)
