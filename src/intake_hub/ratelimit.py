"""Token buckets shared by every process of one instance, in one memory-mapped file.

Each bucket is one slot holding a keyed hash of its key and a *theoretical arrival time*
(GCRA): the bucket is full when that time has passed, and each request pushes it on by
one emission interval. A slot needs no per-limit state, so a full bucket is the same as
no slot at all, and the table can forget any full bucket without losing a count.

Slots sit in sets of `WAYS`; a key lives in the set its hash names, and a new key takes
the set's fullest slot. The hash is keyed with a salt made when the file is created, so
nobody can pick keys that crowd another client's slot out. Each set is locked with a
POSIX byte-range lock while it is read and written: processes sharing the file count
together, and a lock dies with its process, so a SIGKILL never leaves one held.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import time
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"IHRL0001"
_HEADER = struct.Struct("<8sII16s")  # magic, sets, ways, salt
HEADER_SIZE = 64
WAYS = 8
SETS = 8192  # 65,536 buckets in 1 MiB: far more clients than one box serves per hour
_SLOT = struct.Struct("<Qd")  # key hash (0: empty), theoretical arrival time (Unix s)
_SET = struct.Struct("<" + "Qd" * WAYS)


@dataclass(frozen=True)
class Limit:
    """`burst` requests at once, then `rate` per second."""

    rate: float
    burst: int


class Buckets:
    """Token buckets in a file under the instance's home, counted across its processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = _open_table(path)
        try:
            size = HEADER_SIZE + SETS * _SET.size
            self._map = mmap.mmap(self._fd, size)
            magic, sets, ways, salt = _HEADER.unpack_from(self._map, 0)
            if (magic, sets, ways) != (MAGIC, SETS, WAYS):
                raise ValueError(f"{path}: a rate-limit table of another layout")
        except BaseException:
            os.close(self._fd)
            raise
        self._salt: bytes = salt

    def close(self) -> None:
        """Unmap and close the file."""
        self._map.close()
        os.close(self._fd)

    def take(self, key: str, limit: Limit, now: float | None = None) -> float:
        """Take one request from `key`'s bucket: 0.0 when allowed, else seconds to wait."""
        return self._update(key, limit, 1, time.time() if now is None else now)

    def give_back(self, key: str, limit: Limit, now: float | None = None) -> None:
        """Return a request taken by `take` (it turned out not to count)."""
        self._update(key, limit, -1, time.time() if now is None else now)

    def _update(self, key: str, limit: Limit, cost: int, now: float) -> float:
        digest = hashlib.blake2b(key.encode(), digest_size=8, key=self._salt).digest()
        tag = int.from_bytes(digest, "little") or 1
        offset = HEADER_SIZE + (tag % SETS) * _SET.size
        interval = 1.0 / limit.rate
        tolerance = limit.burst * interval
        fcntl.lockf(self._fd, fcntl.LOCK_EX, _SET.size, offset)
        try:
            ways = _SET.unpack_from(self._map, offset)
            way, arrival = _find(ways, tag)
            # Never further ahead than an empty bucket: a clock set back must not lock out.
            arrival = min(max(arrival, now), now + tolerance)
            wanted = arrival + cost * interval
            wait = wanted - now - tolerance
            if wait > 0:
                return wait
            _SLOT.pack_into(self._map, offset + way * _SLOT.size, tag, max(wanted, now))
            return 0.0
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, _SET.size, offset)


def _find(ways: tuple[float, ...], tag: int) -> tuple[int, float]:
    """The way holding `tag` and its arrival time, else the fullest way (to take over)."""
    tags = ways[0::2]
    if tag in tags:
        way = tags.index(tag)
        return way, ways[2 * way + 1]
    # An empty way (tag 0) has arrival 0.0, long past: it is taken before any live bucket.
    arrivals = ways[1::2]
    return arrivals.index(min(arrivals)), float("-inf")


def _open_table(path: Path) -> int:
    """Open the table, creating it whole (header and salt) if no process has yet."""
    try:
        return os.open(path, os.O_RDWR)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, HEADER_SIZE + SETS * _SET.size)
        os.pwrite(fd, _HEADER.pack(MAGIC, SETS, WAYS, secrets.token_bytes(16)), 0)
        # A link fails if another process got there first: then everyone uses its table.
        os.link(draft, path)
    except FileExistsError:
        os.close(fd)
        return os.open(path, os.O_RDWR)
    except BaseException:
        os.close(fd)
        raise
    finally:
        draft.unlink(missing_ok=True)
    return fd
