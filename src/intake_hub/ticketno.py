"""Ticket numbers made at the edge: unique across processes and restarts, easy to read aloud.

A number is 55 bits in 11 Crockford base32 characters (no I, L, O or U):
30 bits of seconds since 2025-01-01, 10 bits of node slot, 15 bits of sequence.
A node that issues more than 32,768 numbers in a second borrows the next second;
the highest second it may use is reserved in its slot file first, so a restart
never reuses a second an earlier run of the same slot handed out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})

LENGTH = 11
EPOCH = 1735689600  # 2025-01-01T00:00:00Z
NODE_BITS = 10
SEQ_BITS = 15
MAX_NODES = 1 << NODE_BITS
_RESERVE_AHEAD = 30

TICKET_RE = re.compile(
    r"(?<![0-9A-Za-z])([0-9A-Za-z]{4}-?[0-9A-Za-z]{4}-?[0-9A-Za-z]{3})(?![0-9A-Za-z])"
)


def encode(value: int) -> str:
    """Write a 55-bit integer as 11 Crockford base32 characters."""
    chars = []
    for _ in range(LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def normalize(text: str) -> str | None:
    """The canonical ticket number for what a customer typed, or None if it is not one."""
    raw = text.strip().upper().replace("-", "").replace(" ", "")
    if len(raw) != LENGTH:
        return None
    try:
        value = 0
        for c in raw:
            value = value * 32 + _DECODE[c]
    except KeyError:
        return None
    if value >> (NODE_BITS + SEQ_BITS) == 0:
        return None
    return encode(value)


def find_numbers(text: str) -> list[str]:
    """Every ticket number quoted in a message, canonical, in order of appearance."""
    found: list[str] = []
    for m in TICKET_RE.finditer(text):
        raw = m.group(1).replace("-", "")
        # All digits is an order or phone number; all letters is a word.
        if raw.isdigit() or not any(c.isdigit() for c in raw):
            continue
        number = normalize(m.group(1))
        if number and number not in found:
            found.append(number)
    return found


def pretty(number: str) -> str:
    """Group a number for reading aloud: `0K3M-7Q2X-9HT`."""
    return f"{number[:4]}-{number[4:8]}-{number[8:]}"


@contextlib.contextmanager
def unclaimed(home: Path, slot: int) -> Iterator[bool]:
    """Hold node `slot` for a moment if no process claims it; yields whether it was free."""
    slots = home / "nodes"
    slots.mkdir(parents=True, exist_ok=True)
    with open(slots / f"slot-{slot}", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


class TicketNumbers:
    """Issues ticket numbers for one node slot; cheap enough to call per message."""

    def __init__(self, node: int, reservation: IO[str] | None = None) -> None:
        if not 0 <= node < MAX_NODES:
            raise ValueError(f"node slot {node} is outside 0..{MAX_NODES - 1}")
        self.node = node
        self._file = reservation
        reserved = 0
        if reservation is not None:
            reservation.seek(0)
            content = reservation.read().strip()
            reserved = int(content) if content.isdigit() else 0
        self._second = max(self._now(), reserved + 1)
        self._seq = 0
        self._reserved = reserved
        self._reserve(self._second)

    @classmethod
    def for_home(cls, home: Path, node: int | None = None) -> TicketNumbers:
        """Claim a node slot: the configured one, else the first free slot lock under HOME."""
        slots = home / "nodes"
        slots.mkdir(parents=True, exist_ok=True)
        candidates = [node] if node is not None else list(range(MAX_NODES))
        for slot in candidates:
            f = open(slots / f"slot-{slot}", "a+")  # noqa: SIM115 - held open for the process life
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            return cls(slot, f)
        raise RuntimeError(f"no free ticket-number slot under {slots} (node={node})")

    @staticmethod
    def _now() -> int:
        return int(time.time()) - EPOCH

    def _reserve(self, second: int) -> None:
        if second <= self._reserved:
            return
        self._reserved = second + _RESERVE_AHEAD
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(str(self._reserved))
            self._file.flush()
            os.fsync(self._file.fileno())

    def next(self) -> str:
        """A fresh ticket number, never issued before by any run of this slot."""
        now = self._now()
        if now > self._second:
            self._second, self._seq = now, 0
        elif self._seq >= 1 << SEQ_BITS:
            self._second, self._seq = self._second + 1, 0
        self._reserve(self._second)
        value = (self._second << (NODE_BITS + SEQ_BITS)) | (self.node << SEQ_BITS) | self._seq
        self._seq += 1
        return encode(value)

    def close(self) -> None:
        """Release the slot for another process."""
        if self._file is not None:
            self._file.close()
            self._file = None
