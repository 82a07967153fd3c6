"""`intake-hub serve` on a data directory where the journal cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.served.conftest import free_port, run_refused

pytestmark = [pytest.mark.fault, pytest.mark.timeout(90)]


def test_unwritable_journal_stops_serve_with_a_clear_error(tmp_path: Path) -> None:
    """A journal that cannot be created: serve exits 2 naming the file, never listens."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "spool").write_text("a file where the spool directory should be")
    env = os.environ | {
        "INTAKE_HUB_HOME": str(home),
        "INTAKE_HUB_HTTP_PORT": str(free_port()),
        "INTAKE_HUB_SECRET_KEY": "served-secret-0123456789abcdef",
        "INTAKE_HUB_RATE_LIMITS": "off",
    }
    done = run_refused(env, "--quiet")
    assert done.returncode == 2
    assert "cannot be written" in done.stderr
    assert str(home / "spool" / "node-") in done.stderr
    assert "Traceback" not in done.stderr
