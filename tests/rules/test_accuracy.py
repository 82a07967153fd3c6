"""The shipped classifier pack against the labelled messages in tests/data/."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from intake_hub.rules import load_rules
from intake_hub.stages.classifier import label

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules(ROOT / "rules").classifier
ROWS = [
    json.loads(line)
    for line in (ROOT / "tests" / "data" / "messages.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]


def accuracy(split: str) -> float:
    """The share of one split's messages the shipped rules put in the labelled category."""
    rows = [r for r in ROWS if r["split"] == split]
    right = sum(label(RULES.find(r["text"]), RULES).category == r["category"] for r in rows)
    return right / len(rows)


def test_the_data_set_is_large_and_covers_every_category() -> None:
    """At least 400 messages, every category present in both the training and held-out parts."""
    assert len(ROWS) >= 400
    by_split = Counter((r["split"], r["category"]) for r in ROWS)
    for category in RULES.spec.categories:
        assert by_split[("train", category)] >= 20, category
        assert by_split[("test", category)] >= 5, category
    assert {r["category"] for r in ROWS} <= set(RULES.spec.categories)


def test_messages_are_unique() -> None:
    """No message is repeated, so no held-out message also sits in the training part."""
    texts = [r["text"] for r in ROWS]
    assert len(texts) == len(set(texts))


@pytest.mark.parametrize(("split", "floor"), [("train", 0.90), ("test", 0.85)])
def test_shipped_pack_is_accurate(split: str, floor: float) -> None:
    """The default pack reaches 90 % on the data it was tuned on and 85 % held out."""
    assert accuracy(split) >= floor
