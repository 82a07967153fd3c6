"""faq.yaml and the new replies.yaml / routing.yaml sections are validated at load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from intake_hub.rules import RulesError, load_rules

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rules to break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def _error(rules_dir: Path) -> str:
    with pytest.raises(RulesError) as info:
        load_rules(rules_dir)
    return str(info.value)


def test_shipped_faq_loads(rules_dir: Path) -> None:
    """The shipped knowledge base loads and changes the rules version when edited."""
    before = load_rules(rules_dir)
    assert before.faq.match("可以用花呗吗") is not None
    path = rules_dir / "faq.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edit\n", encoding="utf-8")
    assert load_rules(rules_dir).version != before.version


def test_faq_is_optional(rules_dir: Path) -> None:
    """Without faq.yaml the rules load and nothing is answered from a knowledge base."""
    (rules_dir / "faq.yaml").unlink()
    assert load_rules(rules_dir).faq.match("可以用花呗吗") is None


def test_faq_error_names_file_and_line(rules_dir: Path) -> None:
    """An FAQ entry without an answer is reported with faq.yaml and its line."""
    (rules_dir / "faq.yaml").write_text(
        "threshold: 90\nentries:\n  - id: x\n    question: 多久发货\n", encoding="utf-8"
    )
    message = _error(rules_dir)
    assert "faq.yaml:3" in message and "answer" in message


def test_bad_status_placeholder(rules_dir: Path) -> None:
    """A status line with an unknown placeholder is refused, naming the allowed ones."""
    path = rules_dir / "replies.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("（更新于 {updated}）", "{phone}"), encoding="utf-8")
    message = _error(rules_dir)
    assert "replies.yaml:" in message and "{phone}" in message


def test_bad_timezone(rules_dir: Path) -> None:
    """An unknown quiet-hours timezone is an error."""
    path = rules_dir / "replies.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("timezone: Asia/Shanghai", "timezone: Mars/Base"), encoding="utf-8"
    )
    assert "Mars/Base" in _error(rules_dir)


def test_routing_rule_with_unknown_team(rules_dir: Path) -> None:
    """A routing rule naming an undefined team is reported at its line."""
    path = rules_dir / "routing.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("rules: []", "rules:\n  - name: x\n    when: {tags: [a]}\n    team: nope"),
        encoding="utf-8",
    )
    message = _error(rules_dir)
    assert "routing.yaml:" in message and "team 'nope' is not defined" in message


def test_bad_strategy(rules_dir: Path) -> None:
    """A team strategy other than least_loaded or round_robin is refused."""
    path = rules_dir / "routing.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("strategy: round_robin", "strategy: random"), encoding="utf-8")
    assert "routing.yaml:" in _error(rules_dir)
