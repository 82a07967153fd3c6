"""The `intake-hub` command as an operator meets it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from intake_hub.cli import main
from tests.conftest import ROOT


def test_rules_check_accepts_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """`rules check` on the shipped rules says ok and exits 0."""
    assert main(["rules", "check", str(ROOT / "rules")]) == 0
    assert "ok (version " in capsys.readouterr().out


def test_rules_check_names_file_and_line_of_a_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A routing rule naming an unknown team fails with the file and line in the message."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    routing = rules / "routing.yaml"
    text = routing.read_text()
    lines = text.splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if "team: aftersales" in line)
    routing.write_text(text.replace("team: aftersales", "team: aftersails", 1))
    assert main(["rules", "check", str(rules)]) == 1
    err = capsys.readouterr().err
    assert f"routing.yaml:{line_no}:" in err and "aftersails" in err


def test_serve_refuses_broken_rules_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve` with a broken rules directory exits 2 naming the file, not with a traceback."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "classifier.yaml").write_text("categories: [not, a, mapping\n")
    monkeypatch.setenv("INTAKE_HUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INTAKE_HUB_RULES_DIR", str(rules))
    assert main(["serve"]) == 2
    assert "classifier.yaml" in capsys.readouterr().err


def test_bad_setting_is_reported_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-numeric port is refused with the variable's name."""
    monkeypatch.setenv("INTAKE_HUB_HTTP_PORT", "eighty")
    assert main(["rules", "check"]) == 2
    assert "INTAKE_HUB_HTTP_PORT" in capsys.readouterr().err
