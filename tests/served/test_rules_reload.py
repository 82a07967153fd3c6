"""A running `intake-hub serve` takes operators' rule edits without a restart."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

from intake_hub.rules import load_rules
from tests.conftest import ADMIN_TOKEN, ROOT
from tests.served.conftest import Served, start_service

TEXT = "开箱视频已经拍好了，发给谁"


def _call(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def post_and_read(served: Served, contact: str) -> dict[str, Any]:
    """Send TEXT as a new customer and return the stored ticket as agents see it."""
    status, sent = _call(
        served.url + "/api/v1/web/messages", {"name": "周先生", "contact": contact, "text": TEXT}
    )
    assert status == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, ticket = _call(f"{served.url}/api/v1/tickets/{sent['ticket']}")
        if status == 200 and len(ticket["messages"]) == 2:
            return dict(ticket)
        time.sleep(0.05)
    raise AssertionError(f"ticket {sent['ticket']} was not stored")


def wait_for_log(served: Served, line: str, timeout: float = 15) -> None:
    """Wait until the service's log holds `line` (the reloader polls every 2 s)."""
    log = served.home.parent / f"serve-{served.url.rsplit(':', 1)[1]}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in log.read_text("utf-8", errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {line!r} in {log}")


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` once in a rule file, as an operator would."""
    text = path.read_text("utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), "utf-8")


def summary(ticket: dict[str, Any]) -> tuple[str, str, str, str]:
    """Category, team, reply text and rules version of a stored ticket."""
    reply = next(m["text"] for m in ticket["messages"] if m["direction"] == "out")
    version = ticket["explanation"]["rules_version"]
    return ticket["category"], ticket["team"], reply, version


def test_keyword_answer_and_route_edits_reach_the_running_service(tmp_path: Path) -> None:
    """Edited rules apply to the next message without a restart; broken ones change nothing."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    home = tmp_path / "home"
    home.mkdir()
    served = start_service(home, INTAKE_HUB_RULES_DIR=str(rules))
    try:
        category, team, reply, version = summary(post_and_read(served, "a@example.com"))
        assert category != "invoice" and team != "complaints" and "开箱视频已收到" not in reply
        assert version == load_rules(rules).version

        # A keyword, an answer and a routing rule, edited while the service runs.
        edit(rules / "classifier.yaml", "  invoice: 4\n", "  invoice: 4\n      开箱视频: 5\n")
        edit(
            rules / "replies.yaml",
            "  ack_overrides:\n",
            "  ack_overrides:\n"
            "    - category: invoice\n"
            "      zh: '开箱视频已收到，工单号 {ticket}，进度 {status_url}'\n"
            "      en: 'Unboxing video received: ticket {ticket}, progress {status_url}'\n",
        )
        edit(
            rules / "routing.yaml",
            "rules: []\n",
            "rules:\n"
            "  - name: unboxing videos\n"
            "    when: {category: invoice}\n"
            "    team: complaints\n",
        )
        edited = load_rules(rules).version
        wait_for_log(served, f"rules reloaded: {version} -> {edited}")
        after = summary(post_and_read(served, "b@example.com"))
        assert after[:2] == ("invoice", "complaints")
        assert "开箱视频已收到" in after[2] and after[3] == edited

        (rules / "routing.yaml").write_text("teams: [\n", "utf-8")
        wait_for_log(served, f"rules not reloaded, keeping {edited}")
        assert summary(post_and_read(served, "c@example.com"))[:2] == ("invoice", "complaints")
        assert summary(post_and_read(served, "d@example.com"))[3] == edited
        assert served.proc.poll() is None
    finally:
        served.stop()
