"""`intake-hub serve` as a real process on a free port, as an operator would run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, ROOT


@dataclass
class Served:
    """A running service process and where to reach it."""

    proc: subprocess.Popen[bytes]
    url: str
    home: Path

    @property
    def database(self) -> Path:
        """The SQLite file of this instance."""
        return self.home / "intake-hub.sqlite3"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the process and wait for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_service(home: Path, **env: str) -> Served:
    """Start `intake-hub serve` on embedded defaults and wait until it is ready."""
    port = free_port()
    environ = (
        os.environ
        | {
            "INTAKE_HUB_HOME": str(home),
            "INTAKE_HUB_HTTP_PORT": str(port),
            "INTAKE_HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "INTAKE_HUB_SECRET_KEY": "served-secret-0123456789abcdef",
            "INTAKE_HUB_RATE_LIMITS": "off",
            # One process starts in half the time; the tests of several ask for them.
            "INTAKE_HUB_PROCESSES": "1",
        }
        | env
    )
    log = open(home.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - outlives this call
    proc = subprocess.Popen(
        [sys.executable, "-m", "intake_hub.cli", "serve", "--quiet"],
        cwd=ROOT,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}: {log.name}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return Served(proc, url, home)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"serve did not become ready: {log.name}")


def run_refused(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `intake-hub serve` in `env` expecting it to refuse to start; its exit and output."""
    return subprocess.run(
        [sys.executable, "-m", "intake_hub.cli", "serve", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A service process on a fresh home, stopped after the test."""
    home = tmp_path / "home"
    home.mkdir()
    s = start_service(home)
    yield s
    if s.proc.poll() is None:
        s.stop()
