"""Live reloads: valid edits swap in atomically, broken ones keep the old rules."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from intake_hub.rules import RuleSet, load_rules
from intake_hub.rules.reload import RulesReloader
from intake_hub.stages.classifier import label

SHIPPED = Path(__file__).resolve().parents[2] / "rules"


class Holder:
    """Stands in for the app's StageSet: something with a `rules` attribute."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped rules to edit."""
    target = tmp_path / "rules"
    shutil.copytree(SHIPPED, target)
    return target


def add_keyword(rules_dir: Path) -> None:
    """Make 开箱视频 an invoice keyword, as an operator would."""
    path = rules_dir / "classifier.yaml"
    text = path.read_text("utf-8").replace(
        "      invoice: 4\n", "      invoice: 4\n      开箱视频: 5\n", 1
    )
    path.write_text(text, "utf-8")


def category(holder: Holder, text: str) -> str:
    """The category the holder's current rules give `text`."""
    rules = holder.rules.classifier
    return label(rules.find(text), rules).category


def test_changed_file_is_picked_up(rules_dir: Path) -> None:
    """An edited keyword takes effect on the next check, with a new version."""
    holder = Holder(load_rules(rules_dir))
    before = holder.rules.version
    reloader = RulesReloader(rules_dir, holder)
    assert reloader.check() is False
    add_keyword(rules_dir)
    assert reloader.check() is True
    assert holder.rules.version != before
    assert category(holder, "开箱视频") == "invoice"


def test_invalid_rules_keep_the_old_ones(rules_dir: Path) -> None:
    """A broken file is reported with its line and the running rules stay as they were."""
    holder = Holder(load_rules(rules_dir))
    old = holder.rules
    reloader = RulesReloader(rules_dir, holder)
    (rules_dir / "routing.yaml").write_text("teams: [", "utf-8")
    assert reloader.check() is False
    assert holder.rules is old
    assert reloader.last_error is not None and "routing.yaml" in str(reloader.last_error)


async def wait_for(holder: Holder, text: str, want: str) -> str:
    """Poll the holder until `text` gets category `want` (or about two seconds pass)."""
    for _ in range(200):
        if category(holder, text) == want:
            break
        await asyncio.sleep(0.01)
    return category(holder, text)


async def test_polling_notices_an_edit(rules_dir: Path) -> None:
    """The background poll swaps in an edited file without any signal."""
    holder = Holder(load_rules(rules_dir))
    reloader = RulesReloader(rules_dir, holder, interval=0.05)
    await reloader.start()
    try:
        add_keyword(rules_dir)
        assert await wait_for(holder, "开箱视频", "invoice") == "invoice"
    finally:
        await reloader.stop()


async def test_sighup_reloads_at_once(rules_dir: Path) -> None:
    """With polling effectively off, SIGHUP alone brings in the edit."""
    holder = Holder(load_rules(rules_dir))
    reloader = RulesReloader(rules_dir, holder, interval=3600)
    await reloader.start()
    try:
        add_keyword(rules_dir)
        os.kill(os.getpid(), signal.SIGHUP)
        assert await wait_for(holder, "开箱视频", "invoice") == "invoice"
    finally:
        await reloader.stop()
