"""The one wire format of envelopes on every bus: orjson bytes."""

from __future__ import annotations

import orjson

from intake_hub.envelope import Envelope


def encode(env: Envelope) -> bytes:
    """Serialise an envelope for the wire."""
    return orjson.dumps(env.model_dump(exclude_none=True))


def decode(body: bytes) -> Envelope:
    """Parse wire bytes back into an envelope; raises `ValueError` on anything else."""
    return Envelope.model_validate(orjson.loads(body))
