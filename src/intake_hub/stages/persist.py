"""The last stage: hand the envelope to durable storage."""

from __future__ import annotations

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


async def persist(env: Envelope, sink: TicketSink) -> Saved:
    """Store the envelope; a redelivered one changes nothing."""
    return await sink.save(env)
