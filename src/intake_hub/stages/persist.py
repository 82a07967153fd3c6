"""The last stage: store the envelope as a ticket, once, however often it is delivered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from intake_hub.envelope import Envelope


class Saved(Protocol):
    """What storage reports back for one envelope."""

    @property
    def duplicate(self) -> bool:
        """True when the envelope had been stored before."""


class TicketSink(Protocol):
    """Durable, idempotent storage of envelopes as tickets."""

    async def save(self, env: Envelope) -> Saved:
        """Store `env` once; returns only after it is committed."""


async def persist(
    env: Envelope, sink: TicketSink, stored: Callable[[Envelope], None] | None = None
) -> Envelope:
    """Store the envelope; `stored` hears of its first storing only, never of a redelivery."""
    saved = await sink.save(env)
    if stored is not None and not saved.duplicate:
        stored(env)
    return env
