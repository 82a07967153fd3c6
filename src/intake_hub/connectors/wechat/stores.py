"""What the WeChat connector is given to remember things: five stores, as protocols.

Each has one database implementation beside it (`deliveries.Deliveries`, `nonces.Nonces`,
and the modules `followers`, `outbox` and `token_lease`); the connector, its verifier, its
book, its event handling, its dispatcher and its token reader know only these shapes and
the values they speak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from intake_hub.status import OpenTicket

# WeChat's customer-service window: a send is allowed until 48 h after the last message.
WINDOW = timedelta(hours=48)


@dataclass(frozen=True)
class Claim:
    """Whether this delivery came first, and the answer recorded so far (None: not yet)."""

    first: bool
    envelope_id: UUID
    answer: str | None
    ticket: str = ""
    attempt: int = 0
    claimed_at: datetime | None = None

    def stale(self, grace_s: float) -> bool:
        """Still unanswered longer than `grace_s` after its holder claimed it."""
        if self.answer is not None or self.claimed_at is None:
            return False
        return (datetime.now(UTC) - self.claimed_at).total_seconds() > grace_s


@dataclass(frozen=True)
class Job:
    """A claimed message: send `text` to `openid` once."""

    id: int
    key: str
    openid: str
    ticket: str
    ticket_id: UUID | None
    text: str
    window_from: datetime
    attempts: int


@dataclass(frozen=True)
class Token:
    """The stored token (None before the first fetch) and when it stops working."""

    value: str | None
    expires_at: datetime | None
    leased: bool


class DeliveryStore(Protocol):
    """Who delivered a push first, and the answer every delivery of it gets."""

    async def claim(self, instance: str, key: str, envelope_id: UUID, ticket: str) -> Claim:
        """Record the first delivery of `key`, or return what the first one recorded."""
        ...

    async def record_answer(self, instance: str, key: str, answer: str) -> None:
        """Store the answer the first delivery sent; later calls never overwrite it."""
        ...

    async def lookup(self, instance: str, key: str) -> Claim | None:
        """The recorded delivery of `key`, None if there is none."""
        ...

    async def take_over(self, instance: str, key: str, attempt: int) -> bool:
        """Win the unanswered claim held as `attempt`; of any number of callers one wins."""
        ...

    async def release(self, instance: str, key: str, attempt: int = 0) -> None:
        """Forget an unanswered claim, held as `attempt`, whose envelope never reached the bus."""
        ...

    async def prune(self, instance: str, before: datetime, batch: int = 5000) -> int:
        """Forget deliveries made before `before`; how many went."""
        ...


class NonceStore(Protocol):
    """The (nonce, timestamp) pairs plaintext-mode pushes came with, and their body hashes."""

    async def see(self, instance: str, nonce: str, timestamp: int, body_hash: str) -> bool:
        """Record this (nonce, timestamp); False when it was first seen with another body."""
        ...

    async def prune(self, instance: str, before: int, batch: int = 5000) -> int:
        """Forget nonces whose timestamp is before `before` (unix seconds); how many went."""
        ...


class FollowerStore(Protocol):
    """A customer's follow state on their openid, and their open tickets."""

    async def follow(self, openid: str, union_id: str | None, at: datetime) -> None:
        """A (re-)subscribe at `at`."""
        ...

    async def unfollow(self, openid: str, union_id: str | None, at: datetime) -> None:
        """An unsubscribe at `at`."""
        ...

    async def open_tickets(self, openid: str, limit: int = 20) -> list[OpenTicket]:
        """The open tickets of the customer behind this openid, newest first."""
        ...


class OutboxStore(Protocol):
    """Customer-service messages to send, each claimed by one sender and sent at most once."""

    async def expect_reply(
        self,
        instance: str,
        envelope_id: UUID,
        openid: str,
        ticket: str,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        """Note that the auto-reply to this envelope must go out later."""
        ...

    async def enqueue(
        self,
        key: str,
        instance: str,
        openid: str,
        ticket: str,
        text: str,
        window_from: datetime,
        now: datetime,
        ticket_id: UUID | None = None,
    ) -> bool:
        """Queue a text under a stable `key`; False if that key was queued before."""
        ...

    async def queued(self, key: str) -> bool:
        """Whether a message with `key` was ever queued."""
        ...

    async def resolve_waiting(self, instance: str, now: datetime, limit: int = 200) -> None:
        """Turn waiting auto-replies whose reply is now stored into pending sends."""
        ...

    async def claim_due(self, instance: str, now: datetime, limit: int = 50) -> list[Job]:
        """Claim pending messages that are due; each is returned to exactly one caller."""
        ...

    async def last_inbound(self, openid: str, since: datetime) -> datetime:
        """When the customer last wrote on WeChat, at least `since`."""
        ...

    async def unsubscribed(self, openid: str) -> bool:
        """Whether the customer unfollowed the account."""
        ...

    async def finish(
        self,
        job: Job,
        status: str,
        now: datetime,
        *,
        code: int | None = None,
        reason: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record how a claimed send ended; `retry_at` puts it back in the queue."""
        ...

    async def reap(self, instance: str, now: datetime, stale_s: float) -> int:
        """Record sends claimed by a worker that never finished as failed."""
        ...


class TokenStore(Protocol):
    """The shared access_token row and the lease that lets one process fetch it."""

    async def read(self, app_id: str, now: datetime) -> Token:
        """The account's current token row."""
        ...

    async def try_lease(
        self,
        app_id: str,
        owner: str,
        now: datetime,
        lease_s: float,
        fresh_until: datetime,
        rejected: str | None = None,
    ) -> bool:
        """Become the one fetcher, if the token needs fetching and nobody else is fetching."""
        ...

    async def store(
        self, app_id: str, owner: str, token: str, expires_at: datetime, now: datetime
    ) -> bool:
        """Save a fetched token and end the lease; False if the lease was lost meanwhile."""
        ...

    async def release(self, app_id: str, owner: str) -> None:
        """Give the lease up after a failed fetch."""
        ...
