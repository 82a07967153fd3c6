"""Files a real start creates hold secrets and personal data: owner-only, whatever the umask."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from intake_hub.runtime.spool import Spool
from intake_hub.storage.db import create_private
from tests.served.conftest import Served, start_service


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make group- and world-readable files (the child inherits it)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _post(served: Served) -> None:
    req = urllib.request.Request(
        served.url + "/api/v1/web/messages",
        data=json.dumps({"name": "Tom", "contact": "t@example.com", "text": "hello"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202


def test_serve_creates_home_database_and_key_owner_only(tmp_path: Path, open_umask: None) -> None:
    """A first start: HOME 0700; the database, its WAL and SHM, and secret.key 0600."""
    home = tmp_path / "home"
    served = start_service(home, INTAKE_HUB_SECRET_KEY="")
    try:
        _post(served)
        files = [served.database, home / "secret.key"]
        files += list(home.glob("intake-hub.sqlite3-*"))
        assert len(files) >= 3
        assert _mode(home) == 0o700
        for path in files:
            assert _mode(path) == 0o600, path
    finally:
        assert served.stop() == 0


def test_gateway_spool_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    """`serve` with an unreachable broker spools: its directory 0700, its files 0600."""
    home = tmp_path / "home"
    served = start_service(home, INTAKE_HUB_AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
    try:
        spools = list((home / "spool").glob("*.sqlite3*"))
        assert spools
        assert _mode(home / "spool") == 0o700
        for path in spools:
            assert _mode(path) == 0o600, path
    finally:
        served.stop()


async def test_spool_file_is_created_owner_only(tmp_path: Path, open_umask: None) -> None:
    """Opening a new spool makes its directory 0700 and its file 0600."""
    spool = Spool(tmp_path / "spool" / "node-0.sqlite3")
    await spool.open()
    await spool.append("t", b"x")
    await spool.close()
    assert _mode(tmp_path / "spool") == 0o700
    for path in (tmp_path / "spool").iterdir():
        assert _mode(path) == 0o600, path


def test_an_existing_file_is_left_as_it_is(tmp_path: Path) -> None:
    """create_private never truncates or re-modes a file that is already there."""
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"data")
    path.chmod(0o640)
    create_private(path)
    assert path.read_bytes() == b"data" and _mode(path) == 0o640
