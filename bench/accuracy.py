"""Classifier accuracy on the labelled messages, per category, with confusion matrices.

    .venv/bin/python bench/accuracy.py [--rules rules] [--data tests/data/messages.jsonl]
                                       [--misses]

Reports each split separately: `train` (the shipped rules are tuned on it), `test`
(held out, ~30 % chosen by a hash of the text), `fresh` (written after tuning and
never looked at while tuning: the most honest estimate of accuracy on new messages) and
`fresh2` (a second fresh set, written before the pack changes of 2026-12-01).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from intake_hub.rules import load_rules
from intake_hub.rules.classifier import ClassifierRules
from intake_hub.stages.classifier import label

ROOT = Path(__file__).resolve().parents[1]


def load_messages(path: Path) -> list[dict[str, str]]:
    """The labelled messages, one JSON object a line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def predict(rules: ClassifierRules, row: dict[str, str]) -> str:
    """The category the rules give one labelled message."""
    return label(rules.find(row["text"]), rules, channel=row.get("channel")).category


def report(name: str, rows: list[dict[str, str]], rules: ClassifierRules, misses: bool) -> float:
    """Print accuracy per category and the confusion matrix; return overall accuracy."""
    cats = list(rules.spec.categories)
    confusion: Counter[tuple[str, str]] = Counter()
    wrong: list[tuple[str, str, str]] = []
    for row in rows:
        got = predict(rules, row)
        confusion[(row["category"], got)] += 1
        if got != row["category"]:
            wrong.append((row["category"], got, row["text"]))
    total = len(rows)
    right = sum(n for (want, got), n in confusion.items() if want == got)
    accuracy = right / total if total else 0.0
    print(f"\n== {name}: {right}/{total} = {accuracy:.1%}")
    for cat in cats:
        n = sum(v for (want, _), v in confusion.items() if want == cat)
        ok = confusion[(cat, cat)]
        print(f"  {cat:16} {ok:3}/{n:<3} {ok / n if n else 0:6.1%}")
    short = [c[:6] for c in cats]
    print("  confusion (rows: expected, columns: predicted)")
    print("  " + " " * 16 + " ".join(f"{s:>6}" for s in short))
    for want in cats:
        cells = " ".join(f"{confusion[(want, got)] or '.':>6}" for got in cats)
        print(f"  {want:16}{cells}")
    if misses:
        for want, got, text in wrong:
            print(f"  MISS {want} -> {got}: {text}")
    return accuracy


def main() -> None:
    """Score the rules on both splits."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", type=Path, default=ROOT / "rules")
    p.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "messages.jsonl")
    p.add_argument(
        "--misses",
        choices=("train", "test", "fresh"),
        help="list every misclassified message of one split (tune on train only)",
    )
    args = p.parse_args()
    rules = load_rules(args.rules).classifier
    rows = load_messages(args.data)
    for split in dict.fromkeys(r["split"] for r in rows):
        chosen = [r for r in rows if r["split"] == split]
        report(split, chosen, rules, args.misses == split)


if __name__ == "__main__":
    main()
