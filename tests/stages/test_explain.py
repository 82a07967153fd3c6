"""`rules explain`: category, priority, reply and route for one message, with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intake_hub.cli import main
from intake_hub.rules import load_rules
from intake_hub.stages.explain import explain

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
RULES = load_rules(RULES_DIR)


async def test_explains_every_stage() -> None:
    """A return request: category with terms, priority reasons, the reply and the route."""
    found = await explain("尺码不对，想换大一码，订单号 4102938475610", RULES)
    assert found.labels.category == "return_exchange"
    assert "尺码" in found.labels.matched
    assert found.labels.extracted is not None
    assert found.labels.extracted.order_numbers == ("4102938475610",)
    assert found.reply.lang == "zh" and "工单号" in found.reply.text
    assert found.route.team == "aftersales"
    assert any("returns" in reason for reason in found.route.reasons)
    assert found.rules_version == RULES.version


async def test_vip_tag_and_channel_are_used() -> None:
    """--customer-tag vip raises the priority one level, and the reason says so."""
    found = await explain("where is my parcel? no update for 5 days", RULES, "wechat", ["vip"])
    assert (found.labels.category, found.labels.priority) == ("logistics", "high")
    assert found.channel == "wechat"
    assert any("vip" in reason for reason in found.labels.priority_reasons)


def test_cli_prints_text(capsys: pytest.CaptureFixture[str]) -> None:
    """The text output names the category, the urgent signal, the reply and the team."""
    code = main(["rules", "explain", "我要投诉，再不处理就打12315", "--rules-dir", str(RULES_DIR)])
    out = capsys.readouterr().out
    assert code == 0
    assert "category:   complaint" in out
    assert "priority:   urgent" in out and "'12315' signals urgent" in out
    assert "reply (ack, zh)" in out
    assert "route:      team complaints" in out


def test_cli_prints_json_with_negations(capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives machine-readable output, including terms cancelled by a negation."""
    argv = ["rules", "explain", "不是质量问题，尺码不对想退贷", "--json"]
    code = main([*argv, "--customer-tag", "vip", "--rules-dir", str(RULES_DIR)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["labels"]["category"] == "return_exchange"
    assert "退货~退贷" in data["labels"]["matched"]
    assert data["negated"] == {"质量": "不是"}
    assert data["customer_tags"] == ["vip"]
    assert data["route"]["team"] == "aftersales"


def test_cli_refuses_broken_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Broken rule files are reported, not explained."""
    code = main(["rules", "explain", "hi", "--rules-dir", str(tmp_path)])
    assert code == 2
    assert "classifier.yaml" in capsys.readouterr().err


def test_cli_refuses_an_unknown_channel(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown channel is named in the error."""
    code = main(["rules", "explain", "hi", "--channel", "fax", "--rules-dir", str(RULES_DIR)])
    assert code == 2
    assert "fax" in capsys.readouterr().err
