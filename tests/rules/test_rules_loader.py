"""Loading rules/: the shipped files load, and every mistake names its file and line."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from intake_hub.rules import RulesError, RuleSet, load_rules

SHIPPED = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped rules to break."""
    target = tmp_path / "rules"
    shutil.copytree(SHIPPED, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact passage of a rule file, failing if it is not there."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    """The 1-based line where `needle` first appears in the file."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def load_error(rules_dir: Path) -> str:
    """Load the directory, expecting failure; the error text."""
    with pytest.raises(RulesError) as caught:
        load_rules(rules_dir)
    return str(caught.value)


def test_shipped_rules_load() -> None:
    """The rules in the repository are valid, so a fresh install starts."""
    rules = load_rules(SHIPPED)
    assert isinstance(rules, RuleSet)
    assert len(rules.version) == 12
    assert set(rules.routing.categories) <= set(rules.classifier.spec.categories)
    assert rules.classifier.spec.fallback == "other"


def test_ruleset_is_frozen() -> None:
    """Nothing can swap a rule file's content under a running stage."""
    rules = load_rules(SHIPPED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.version = "x"  # type: ignore[misc]


def test_version_follows_content(rules_dir: Path) -> None:
    """The rules version stays put across loads and changes when an operator edits a file."""
    before = load_rules(rules_dir).version
    assert load_rules(rules_dir).version == before
    (rules_dir / "replies.yaml").write_text(
        (rules_dir / "replies.yaml").read_text(encoding="utf-8") + "# edited\n", encoding="utf-8"
    )
    assert load_rules(rules_dir).version != before


def test_bad_yaml_syntax(rules_dir: Path) -> None:
    """A broken YAML line is reported with the file and line the parser stopped at."""
    path = rules_dir / "classifier.yaml"
    edit(path, "      退钱: 3\n", "      退钱: [3\n")
    message = load_error(rules_dir)
    assert message.startswith(f"{path}:")
    assert "YAML syntax" in message
    line = int(message.split(":")[1])
    assert line_of(path, "退钱") <= line <= line_of(path, "退钱") + 2


def test_unknown_category_in_routing(rules_dir: Path) -> None:
    """A misspelt category in routing.yaml is named with its line."""
    path = rules_dir / "routing.yaml"
    edit(path, "  refund:\n", "  refnd:\n")
    line = line_of(path, "refnd:")
    assert load_error(rules_dir) == (
        f"{path}:{line}: category 'refnd' is not defined in classifier.yaml"
    )


def test_unknown_team_in_routing(rules_dir: Path) -> None:
    """A category sent to a team that does not exist is named with its line."""
    path = rules_dir / "routing.yaml"
    edit(path, "    team: logistics\n", "    team: logistic\n")
    line = line_of(path, "team: logistic")
    assert load_error(rules_dir) == f"{path}:{line}: team 'logistic' is not defined under teams"


def test_unknown_fallback_team(rules_dir: Path) -> None:
    """A fallback team missing from the team list is caught."""
    path = rules_dir / "routing.yaml"
    edit(path, "fallback: general\n", "fallback: genral\n")
    assert f"{path}:{line_of(path, 'fallback: genral')}: fallback team 'genral'" in load_error(
        rules_dir
    )


def test_unknown_fallback_category(rules_dir: Path) -> None:
    """A classifier fallback that is not a category is caught."""
    path = rules_dir / "classifier.yaml"
    edit(path, "fallback: other\n", "fallback: misc\n")
    assert f"{path}:{line_of(path, 'fallback: misc')}: fallback category 'misc'" in load_error(
        rules_dir
    )


def test_missing_placeholder(rules_dir: Path) -> None:
    """An acknowledgement that forgets the status link is refused, pointing at that template."""
    path = rules_dir / "replies.yaml"
    edit(path, "at any time here: {status_url}", "at any time on our website")
    message = load_error(rules_dir)
    assert message.startswith(f"{path}:{line_of(path, '    en:')}: templates.ack.en:")
    assert "missing placeholder {status_url}" in message


def test_unknown_placeholder(rules_dir: Path) -> None:
    """A placeholder the responder cannot fill is refused before any customer sees it."""
    path = rules_dir / "replies.yaml"
    edit(path, "工单号 {ticket}。", "工单号 {ticket}，订单 {order}。")
    message = load_error(rules_dir)
    assert message.startswith(f"{path}:{line_of(path, '    zh:')}: templates.ack.zh:")
    assert "unknown placeholder {order}" in message


def test_placeholder_cannot_reach_attributes(rules_dir: Path) -> None:
    """A template cannot use format tricks to print internals of the ticket value."""
    path = rules_dir / "replies.yaml"
    edit(path, "工单号 {ticket}。", "工单号 {ticket}{ticket.__class__}。")
    assert "unknown placeholder {ticket.__class__}" in load_error(rules_dir)


def test_weight_of_wrong_type(rules_dir: Path) -> None:
    """A keyword weight that is not a number is named with its file and line."""
    path = rules_dir / "classifier.yaml"
    edit(path, "      退钱: 3\n", "      退钱: heavy\n")
    message = load_error(rules_dir)
    assert message.startswith(f"{path}:{line_of(path, '退钱: heavy')}: categories.refund.keywords.")
    assert "valid number" in message


def test_keywords_as_list_instead_of_weights(rules_dir: Path) -> None:
    """Keywords written as a plain list (no weights) are refused at the list's line."""
    path = rules_dir / "classifier.yaml"
    edit(
        path,
        "    keywords:\n      发票: 4\n",
        "    keywords: [发票]\n    extra_keywords:\n      发票: 4\n",
    )
    message = load_error(rules_dir)
    assert f"{path}:{line_of(path, 'keywords: [发票]')}: categories.invoice.keywords:" in message
    assert (
        f"{path}:{line_of(path, 'extra_keywords')}: categories.invoice.extra_keywords:" in message
    )


def test_unknown_priority_level(rules_dir: Path) -> None:
    """A priority level the hub does not know (critical) is refused at its line."""
    path = rules_dir / "classifier.yaml"
    edit(path, "    high:\n", "    critical:\n")
    message = load_error(rules_dir)
    assert message.startswith(f"{path}:{line_of(path, 'critical:')}: priority.signals.critical")


def test_duplicate_key(rules_dir: Path) -> None:
    """A category defined twice is reported instead of one copy silently winning."""
    path = rules_dir / "routing.yaml"
    edit(
        path,
        "  other:\n    team: general\n",
        "  other:\n    team: general\n  refund:\n    team: x\n",
    )
    line = len(path.read_text(encoding="utf-8").splitlines()) - 1
    assert load_error(rules_dir) == f"{path}:{line}: duplicate key 'refund'"


def test_missing_file(rules_dir: Path) -> None:
    """A rules directory without replies.yaml says which file is missing."""
    (rules_dir / "replies.yaml").unlink()
    assert load_error(rules_dir) == f"{rules_dir / 'replies.yaml'}: file not found"


def test_empty_file(rules_dir: Path) -> None:
    """An emptied routing.yaml is reported, not taken as 'no routing'."""
    (rules_dir / "routing.yaml").write_text("# nothing yet\n", encoding="utf-8")
    assert load_error(rules_dir) == f"{rules_dir / 'routing.yaml'}:1: the file is empty"


def test_every_problem_is_reported_at_once(rules_dir: Path) -> None:
    """Problems in several files are listed together, so one check run finds them all."""
    edit(rules_dir / "classifier.yaml", "      退钱: 3\n", "      退钱: heavy\n")
    edit(rules_dir / "replies.yaml", "at any time here: {status_url}", "later")
    with pytest.raises(RulesError) as caught:
        load_rules(rules_dir)
    files = {p.file.name for p in caught.value.problems}
    assert files == {"classifier.yaml", "replies.yaml"}


def test_misspelt_setting(rules_dir: Path) -> None:
    """A misspelt key is named at its line, and the setting it should have been is missed."""
    path = rules_dir / "routing.yaml"
    edit(path, "fallback: general\n", "fallbak: general\n")
    message = load_error(rules_dir)
    assert f"{path}:{line_of(path, 'fallbak')}: fallbak: unknown setting (misspelt?)" in message
    # A missing top-level setting points at where the file's settings begin.
    start = line_of(path, "teams:")
    assert f"{path}:{start}: fallback: required setting is missing" in message


def test_variant_of_an_unknown_term_is_refused(rules_dir: Path) -> None:
    """A near-variant must point at a keyword, or it would silently count for nothing."""
    edit(rules_dir / "classifier.yaml", "  发票: [发漂,", "  发飘飘: [发漂,")
    with pytest.raises(RulesError) as exc:
        load_rules(rules_dir)
    assert "classifier.yaml" in str(exc.value) and "发飘飘" in str(exc.value)


def test_phrase_with_an_unknown_category_is_refused(rules_dir: Path) -> None:
    """A phrase rule naming a category that does not exist is reported with its line."""
    edit(
        rules_dir / "classifier.yaml",
        "category: order_change, weight: 3}",
        "category: nope, weight: 3}",
    )
    with pytest.raises(RulesError) as exc:
        load_rules(rules_dir)
    assert "'nope' is not defined" in str(exc.value)


def test_status_notice_for_a_status_agents_cannot_set(rules_dir: Path) -> None:
    """A notice for `received` (never set by an agent) or with a stray placeholder is refused."""
    path = rules_dir / "replies.yaml"
    edit(path, "status_notices:\n  resolved:", "status_notices:\n  received:")
    assert "status_notices.received" in load_error(rules_dir)
    edit(path, "status_notices:\n  received:", "status_notices:\n  resolved:")
    edit(path, "已处理完毕（{status}）", "已处理完毕（{status}，{assignee}）")
    message = load_error(rules_dir)
    # The block scalar's key line, as for every template.
    assert message.startswith(f"{path}:{line_of(path, '{assignee}') - 1}: status_notices.resolved")
    assert "unknown placeholder {assignee}" in message
