"""Whose turn it is to write a SQLite file, among the processes sharing it.

SQLite lets one writer in at a time and makes the others poll: its busy handler sleeps
1, 2, 5, 10, ... up to 100 ms between tries, so a process waiting behind another's
commit often sleeps well past it, and with two `serve` processes draining at once one of
them crawls. A blocking `flock` on a file beside the database wakes the next writer the
moment the lock is released, and queues the writers in the kernel instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import weakref
from collections.abc import AsyncIterator

_turns: dict[str, _Turn] = {}


class _Turn:
    """One process's handle on a database's write lock file."""

    def __init__(self, database: str) -> None:
        self.fd = os.open(f"{database}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
        # flock belongs to the open file: coroutines of this process take turns here first
        # (one lock per event loop, as a lock serves only the loop it first waited in).
        self.local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )


@contextlib.asynccontextmanager
async def write_turn(database: str) -> AsyncIterator[None]:
    """Hold the cross-process write turn on the SQLite file `database`."""
    turn = _turns.get(database)
    if turn is None:
        turn = _turns[database] = _Turn(database)
    loop = asyncio.get_running_loop()
    local = turn.local.get(loop) or turn.local.setdefault(loop, asyncio.Lock())
    async with local:
        try:
            fcntl.flock(turn.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await asyncio.to_thread(fcntl.flock, turn.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(turn.fd, fcntl.LOCK_UN)
