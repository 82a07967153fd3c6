"""`serve` on every core: a supervisor and N whole embedded instances sharing one port.

Each process is a complete `serve` (HTTP, in-process bus, every stage) with a ticket-number
slot, a spool and a bus of its own; the kernel spreads connections over them
(SO_REUSEPORT), they share the database, the rate-limit table and the home, and answer
`/metrics` for all of them. The supervisor migrates the database once, starts the
processes, starts again one that dies, and passes SIGTERM / SIGINT on for a graceful stop.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from intake_hub.config import Settings

log = logging.getLogger("intake_hub")

CHILD_FLAG = "--child"
RESTART_DELAY_S = 0.5
# More deaths than this within the window is a crash loop: stop rather than spin.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
# A process drains its queue (60 s at most) and HTTP (30 s) before it exits.
STOP_TIMEOUT_S = 100.0
_PR_SET_PDEATHSIG = 1
EXIT_CONFIG = 2


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor goes, however it goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Supervisor:
    """Keeps `count` serve processes running until told to stop."""

    count: int
    argv: Sequence[str]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False
    deaths: list[float] = field(default_factory=list)

    def run(self) -> int:
        """Start every process and watch them; the exit code for the command."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for index in range(self.count):
            self._start(index)
        log.info("serve: %d processes", self.count)
        code = 0
        while self.procs:
            time.sleep(0.2)
            for index, proc in list(self.procs.items()):
                status = proc.poll()
                if status is None:
                    continue
                del self.procs[index]
                if self.stopping:
                    code = code or max(status, 0)
                    continue
                code = self._died(index, proc.pid, status)
                if code:
                    self._stop(signal.SIGTERM, None)
        return code

    def _start(self, index: int) -> None:
        # A group of its own: Ctrl-C in a terminal reaches the supervisor alone, which
        # passes it on once; a second signal in the middle of a drain would cut it short.
        self.procs[index] = subprocess.Popen(
            [*self.argv, CHILD_FLAG],
            preexec_fn=_die_with_parent,
            close_fds=True,
            process_group=0,
        )

    def _died(self, index: int, pid: int, status: int) -> int:
        """A process ended on its own: start it again, or give up (the exit code, or 0)."""
        how = f"signal {-status}" if status < 0 else f"exit {status}"
        if status == EXIT_CONFIG:
            log.error("serve: process %d refused its configuration; stopping", pid)
            return EXIT_CONFIG
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < RESTART_WINDOW_S] + [now]
        if len(self.deaths) > MAX_RESTARTS:
            log.error("serve: processes keep dying (%s); stopping", how)
            return 1
        log.error("serve: process %d ended (%s); starting it again", pid, how)
        time.sleep(RESTART_DELAY_S)
        self._start(index)
        return 0

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("serve: stopping %d processes", len(self.procs))
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        # SIGKILL stragglers from a separate check: the main loop keeps reaping.
        signal.signal(signal.SIGALRM, lambda *_: self._kill_stragglers(deadline))
        signal.alarm(int(STOP_TIMEOUT_S) + 1)

    def _kill_stragglers(self, deadline: float) -> None:
        for proc in self.procs.values():
            if proc.poll() is None and time.monotonic() >= deadline:
                log.error("serve: process %d did not stop in time; killing it", proc.pid)
                proc.kill()


def child_argv(args: Sequence[str]) -> list[str]:
    """The command line of one process: this `serve`'s own, run by the same Python."""
    return [sys.executable, "-m", "intake_hub.cli", "serve", *args]


def prepare(settings: Settings) -> str | None:
    """Before the processes start: check the files, migrate once; why they cannot run."""
    if settings.node_id is not None:
        return (
            "INTAKE_HUB_NODE_ID names one ticket-number slot and each process needs its own:"
            " unset it (slots are then claimed under INTAKE_HUB_HOME) or set"
            " INTAKE_HUB_PROCESSES=1"
        )
    from intake_hub.connectors.registry import ConnectorConfigError, load_connectors
    from intake_hub.rules import RulesError, load_rules
    from intake_hub.storage import db

    # Said once here rather than by every process, and before any of them starts.
    try:
        load_rules(settings.rules_dir)
        load_connectors(settings.connectors_dir)
    except (RulesError, ConnectorConfigError) as exc:
        return str(exc)
    # Every process migrates on start; done once here, none of them races another.
    asyncio.run(db.migrate(settings.database_url))
    return None
