"""The shared token buckets: exact across processes, fair under a flood of new keys."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from intake_hub.ratelimit import Buckets, Limit

PER_MINUTE_5 = Limit(rate=5 / 60, burst=5)


def test_burst_then_one_per_interval(tmp_path: Path) -> None:
    """Five at once, the sixth told to wait 12 s; after 12 s exactly one more."""
    b = Buckets(tmp_path / "rl")
    assert [b.take("k", PER_MINUTE_5, now=1000.0) for _ in range(5)] == [0.0] * 5
    assert b.take("k", PER_MINUTE_5, now=1000.0) == 12.0
    assert b.take("k", PER_MINUTE_5, now=1012.0) == 0.0
    assert b.take("k", PER_MINUTE_5, now=1012.0) > 0
    assert b.take("other", PER_MINUTE_5, now=1012.0) == 0.0


def test_given_back_requests_do_not_count(tmp_path: Path) -> None:
    """A request given back leaves the bucket as it was."""
    b = Buckets(tmp_path / "rl")
    for _ in range(20):
        assert b.take("k", PER_MINUTE_5, now=50.0) == 0.0
        b.give_back("k", PER_MINUTE_5, now=50.0)
    assert [b.take("k", PER_MINUTE_5, now=50.0) == 0.0 for _ in range(6)] == [True] * 5 + [False]


def test_clock_set_back_does_not_lock_a_client_out(tmp_path: Path) -> None:
    """After the clock jumps back a day, a drained bucket waits one token, not a day."""
    b = Buckets(tmp_path / "rl")
    for _ in range(5):
        b.take("k", PER_MINUTE_5, now=100_000.0)
    assert b.take("k", PER_MINUTE_5, now=100_000.0 - 86_400) <= 12.0


def test_a_flood_of_new_keys_does_not_wash_out_a_throttled_one(tmp_path: Path) -> None:
    """Two hundred thousand new clients later, the drained client is still held back."""
    b = Buckets(tmp_path / "rl")
    for _ in range(5):
        b.take("abuser", PER_MINUTE_5, now=10.0)
    for n in range(200_000):
        b.take(f"client-{n}", PER_MINUTE_5, now=10.0)
    assert b.take("abuser", PER_MINUTE_5, now=10.0) > 0


def _take_many(path: Path, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    b = Buckets(path)
    limit = Limit(rate=1e-6, burst=60)
    out.put(sum(b.take("shared", limit) == 0.0 for _ in range(n)))


def test_processes_sharing_the_file_count_together(tmp_path: Path) -> None:
    """Three processes taking 50 each from one 60-request bucket get exactly 60 in all."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_many, args=(tmp_path / "rl", 50, out)) for _ in range(3)]
    for p in procs:
        p.start()
    allowed = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert allowed == 60


def test_the_file_is_private_and_reused(tmp_path: Path) -> None:
    """Created 0600; a second opener (a restart) sees the same counts."""
    path = tmp_path / "home" / "rl"
    first = Buckets(path)
    for _ in range(5):
        first.take("k", PER_MINUTE_5, now=7.0)
    first.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Buckets(path).take("k", PER_MINUTE_5, now=7.0) > 0
