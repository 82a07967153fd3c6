"""Classification throughput as the keyword list grows: 100, 1,000 and 10,000 keywords.

    .venv/bin/python bench/classify_bench.py [--seconds 3] [--clock cpu|wall] [--repeat N]

The text is the labelled customer messages in tests/data/messages.jsonl, cycled. Each
pack holds the shipped keywords (cut down for 100) plus generated Chinese and English
keywords spread over the categories, so the automaton and the typo index both grow.
Single thread, one core; prints messages per second for matching + labelling, and with
field extraction added. The default clock is the thread's CPU time, so other jobs on a
shared box slow the run down but do not change the rate much; `--clock wall` counts
elapsed time. With `--repeat N` each rate is measured N times and the range is shown.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from intake_hub.rules.classifier import ClassifierRules, ClassifierSpec
from intake_hub.rules.extract import extract
from intake_hub.stages.classifier import label

ROOT = Path(__file__).resolve().parents[1]
# Common characters of shop messages: generated terms look like real ones to the automaton.
HANZI = (
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着"
    "去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主"
    "行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二"
    "理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走"
    "电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市"
    "眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提"
    "感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它"
    "许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青"
    "管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步"
    "完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持"
    "取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单"
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def messages() -> list[str]:
    """The labelled messages' text, the realistic load."""
    path = ROOT / "tests" / "data" / "messages.jsonl"
    return [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]


def pack(size: int, seed: int = 7) -> ClassifierRules:
    """The shipped classifier.yaml grown (or cut) to `size` keywords in all."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "rules" / "classifier.yaml").read_text("utf-8"))
    cats = data["categories"]
    shipped = sum(len(c.get("keywords") or {}) for c in cats.values())
    rng = random.Random(seed)
    if size < shipped:
        keep = size
        for cat in cats.values():
            kws = cat.get("keywords") or {}
            take = dict(list(kws.items())[: max(0, min(len(kws), keep // len(cats) + 1))])
            cat["keywords"] = take
        total = sum(len(c["keywords"]) for c in cats.values())
        data["phrases"] = []
        data["variants"] = {
            k: v
            for k, v in data["variants"].items()
            if any(k in c["keywords"] for c in cats.values())
        }
        assert total <= size + len(cats), total
    else:
        names = list(cats)
        made = shipped
        while made < size:
            cat = cats[rng.choice(names)]
            if rng.random() < 0.7:
                term = "".join(rng.choice(HANZI) for _ in range(rng.randint(2, 4)))
            else:
                term = "".join(rng.choice(LETTERS) for _ in range(rng.randint(5, 10)))
            kws = cat.setdefault("keywords", {})
            if term not in kws:
                kws[term] = rng.randint(1, 3)
                made += 1
    return ClassifierRules(ClassifierSpec.model_validate(data))


def rate(
    rules: ClassifierRules,
    texts: list[str],
    seconds: float,
    with_extract: bool,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Messages per second over about `seconds` of the given clock."""
    done, start = 0, clock()
    while (elapsed := clock() - start) < seconds:
        for text in texts:
            label(rules.find(text), rules, "web")
            if with_extract:
                extract(text)
        done += len(texts)
    return done / elapsed


def main() -> None:
    """Print a table of sizes and rates."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    texts = messages()
    print(f"{len(texts)} messages, avg {sum(map(len, texts)) / len(texts):.0f} chars")
    print(f"{'keywords':>9} {'terms':>7} {'classify msg/s':>17} {'+extract msg/s':>17}")
    for size in (100, 1_000, 10_000):
        rules = pack(size)
        rate(rules, texts, 0.5, False, clock)  # warm the typo cache as a running service would
        plain = [rate(rules, texts, args.seconds, False, clock) for _ in range(args.repeat)]
        full = [rate(rules, texts, args.seconds, True, clock) for _ in range(args.repeat)]
        print(f"{size:>9} {len(rules.terms):>7} {_span(plain):>17} {_span(full):>17}")


def _span(rates: list[float]) -> str:
    low, high = min(rates), max(rates)
    return f"{low:,.0f}" if len(rates) == 1 else f"{low / 1000:.1f}-{high / 1000:.1f}k"


if __name__ == "__main__":
    main()
