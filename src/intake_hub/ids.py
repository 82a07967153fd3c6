"""Time-ordered ids (UUID version 7): new rows land at the end of every index they enter."""

from __future__ import annotations

import os
import random
import time
from uuid import UUID

_random = random.Random(os.urandom(32))
# A forked child must not replay its parent's random stream.
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))

_VERSION = 7 << 76
_VARIANT = 2 << 62


def uuid7() -> UUID:
    """A fresh UUIDv7: 48 bits of Unix milliseconds, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = _random.getrandbits(74)
    return UUID(int=(ms << 80) | _VERSION | ((rand >> 62) << 64) | _VARIANT | (rand & (2**62 - 1)))
