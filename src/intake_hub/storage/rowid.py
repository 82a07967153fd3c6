"""Row ids derived from the envelope id, so a redelivery makes the same rows."""

from __future__ import annotations

import functools
import hashlib
from uuid import UUID

from intake_hub.envelope import Envelope


@functools.cache
def _salt(role: str) -> int:
    digest = hashlib.blake2b(role.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**62 - 1)


def row_id(env: Envelope, role: str) -> UUID:
    """The id of a row this envelope makes, derived from the envelope id.

    Only the low 62 bits change, so a time-ordered envelope id gives time-ordered row
    ids (new rows append to the indexes instead of dirtying pages all over them), no
    entropy is drawn per row, and a redelivery computes the same ids.
    """
    return UUID(int=env.id.int ^ _salt(role))
