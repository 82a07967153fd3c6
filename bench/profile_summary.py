"""Top functions by own time and by total time from py-spy's collapsed stacks.

    .venv/bin/py-spy record --pid PID --duration 10 --rate 200 --format raw -o /tmp/svc.txt
    .venv/bin/python bench/profile_summary.py /tmp/svc.txt --top 25

Frames are grouped by function and file (line numbers dropped). Own time: samples where the
function is the innermost frame. Total time: samples where it is anywhere on the stack
(counted once per sample). Percentages are of all non-idle samples py-spy took.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    """`func (path/file.py:123)` -> `func (path/file.py)`; site-packages paths shortened."""
    name = _LINE.sub(")", frame.strip())
    return name.replace("site-packages/", "")


def load(path: Path) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """(own, total, top-level area, samples) from a collapsed-stack file."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    area: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
        area[classify(frames)] += n
    return own, total, area, samples


AREAS = (
    ("sqlite / aiosqlite thread", ("aiosqlite/", "sqlite3")),
    ("storage (intake_hub.storage)", ("intake_hub/storage/",)),
    ("tortoise ORM", ("tortoise/", "pypika")),
    ("stages (classify/respond/route/persist)", ("intake_hub/stages/", "intake_hub/rules/")),
    ("bus + pipeline", ("intake_hub/bus/", "intake_hub/runtime/pipeline.py")),
    (
        "web intake (connector, validation)",
        (
            "intake_hub/connectors/",
            "intake_hub/api/",
            "intake_hub/runtime/intake.py",
            "intake_hub/access.py",
            "intake_hub/ticketno.py",
        ),
    ),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("aiohttp HTTP server", ("aiohttp/",)),
)


def classify(frames: list[str]) -> str:
    """The innermost area of the project a sample is in (a coarse breakdown)."""
    for f in reversed(frames):
        for name, keys in AREAS:
            if any(k in f for k in keys):
                return name
    return "other (event loop, stdlib)"


def report(path: Path, top: int) -> str:
    """The two tables and the area breakdown as text."""
    own, total, area, samples = load(path)
    if not samples:
        return f"{path}: no samples"
    out = [f"{path}: {samples} samples", "", "by area (innermost project area on the stack):"]
    out += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in area.most_common()]
    out += ["", f"top {top} by own time:"]
    out += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in own.most_common(top)]
    out += ["", f"top {top} by total time:"]
    out += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in total.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print the summary of one collapsed-stack file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    print(report(args.path, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
