"""`intake-hub serve` whose data directory fills up mid-stream: 503, never a lost 202."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.served.conftest import start_service

pytestmark = [pytest.mark.fault, pytest.mark.timeout(90)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own (skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> Path:
    """Write a file until the filesystem is full; returns it."""
    filler = mount / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


async def _post(url: str, tag: str, n: int) -> list[tuple[int, str, str | None]]:
    """Post `n` web messages; (status, error code or ticket, Retry-After) of each."""
    out: list[tuple[int, str, str | None]] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            body = {"name": "吴", "contact": f"{tag}{i}@example.com", "text": f"第{i}单 " * 200}
            async with session.post(url + "/api/v1/web/messages", json=body) as resp:
                data = await resp.json()
                key = data["ticket"] if resp.status == 202 else data["error"]
                out.append((resp.status, key, resp.headers.get("Retry-After")))
    return out


def _stored(database: Path) -> list[str]:
    conn = sqlite3.connect(database, timeout=10)
    try:
        return [n for (n,) in conn.execute("SELECT number FROM ticket")]
    finally:
        conn.close()


def _wait_stored(database: Path, numbers: set[str]) -> list[str]:
    for _ in range(200):
        if numbers <= set(stored := _stored(database)):
            return stored
        time.sleep(0.1)
    return _stored(database)


def test_full_disk_answers_503_and_every_202_is_stored(tmp_path: Path, small_disk: Path) -> None:
    """Data directory full mid-stream: 503 with Retry-After, no 202 lost; freed, 202 again."""
    # HOME is the small disk itself, so the server's log (beside HOME) is not on it.
    home = small_disk
    database = tmp_path / "db.sqlite3"
    served = start_service(
        home,
        INTAKE_HUB_PROCESSES="1",
        INTAKE_HUB_RATE_LIMITS="off",
        INTAKE_HUB_DATABASE_URL=f"sqlite://{database}",
    )
    try:
        before = asyncio.run(_post(served.url, "a", 5))
        assert [s for s, _, _ in before] == [202] * 5

        filler = _fill(small_disk)
        with pytest.raises(OSError) as full:
            (small_disk / "probe").write_bytes(b"\0" * 65536)
        assert full.value.errno == errno.ENOSPC
        during = asyncio.run(_post(served.url, "b", 40))
        assert {(s, k) for s, k, _ in during if s != 202} == {(503, "spool_full")}
        refused = [r for s, _, r in during if s == 503]
        assert refused and all(r and int(r) > 0 for r in refused)

        filler.unlink()
        after = asyncio.run(_post(served.url, "c", 5))
        assert [s for s, _, _ in after] == [202] * 5

        accepted = [k for s, k, _ in before + during + after if s == 202]
        stored = _wait_stored(database, set(accepted))
        assert set(accepted) <= set(stored)
        assert len(stored) == len(set(stored))
    finally:
        served.stop()
    (log,) = tmp_path.glob("serve-*.log")
    assert "write failed: database or disk is full" in log.read_text()
