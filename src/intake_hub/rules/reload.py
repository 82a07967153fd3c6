"""Live rule reloads: on SIGHUP or when a rule file changes, swap in the new rules at once.

New rules replace the old ones only when every file validates; otherwise the old rules
stay in force and the problems are logged with file and line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Protocol

from intake_hub.rules.errors import RulesError
from intake_hub.rules.loader import FILES, OPTIONAL_FILES, RuleSet, load_rules

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


class HasRules(Protocol):
    """Whatever holds the rules the stages read (the app's StageSet)."""

    rules: RuleSet


def fingerprint(rules_dir: Path) -> Fingerprint:
    """Name, modification time and size of every rule file; a missing file counts as -1."""
    out = []
    for name in (*FILES, *OPTIONAL_FILES):
        try:
            st = (rules_dir / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, -1, -1))
    return tuple(out)


class RulesReloader:
    """Polls the rules directory and listens for SIGHUP; swaps `target.rules` when valid."""

    def __init__(self, rules_dir: Path, target: HasRules, interval: float = 2.0) -> None:
        self.rules_dir = rules_dir
        self.target = target
        self.interval = interval
        self.last_error: RulesError | None = None
        self._seen = fingerprint(rules_dir)
        self._task: asyncio.Task[None] | None = None
        self._signal = False

    def reload(self) -> bool:
        """Load the rules now; swap them in if valid and different. True when swapped."""
        self._seen = fingerprint(self.rules_dir)
        try:
            new = load_rules(self.rules_dir)
        except RulesError as exc:
            self.last_error = exc
            log.error("rules not reloaded, keeping %s:\n%s", self.target.rules.version, exc)
            return False
        self.last_error = None
        old = self.target.rules.version
        if new.version == old:
            return False
        # One assignment: each stage call reads the whole RuleSet once, old or new.
        self.target.rules = new
        log.info("rules reloaded: %s -> %s", old, new.version)
        return True

    def check(self) -> bool:
        """Reload when any rule file's time or size changed since the last look."""
        if fingerprint(self.rules_dir) == self._seen:
            return False
        return self.reload()

    async def start(self) -> None:
        """Begin polling, and reload on SIGHUP where the platform has it."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            self._signal = True
        self._task = asyncio.create_task(self._poll(), name="rules-reloader")

    async def stop(self) -> None:
        """Stop polling and release SIGHUP."""
        if self._signal:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signal = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception:  # a reload bug must not stop future reloads
                log.exception("rules reload check failed")
