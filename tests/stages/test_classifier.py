"""The classify stage against the shipped classifier.yaml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_hub.envelope import PRIORITIES, Envelope
from intake_hub.rules import RuleSet, load_rules
from intake_hub.stages.classifier import classify, label

MakeEnvelope = Callable[..., Envelope]
SHIPPED = load_rules(Path(__file__).resolve().parents[2] / "rules")

# (text, category, priority): what customers really write, typos included.
EXAMPLES = [
    ("尺码不对，想换大一码，订单号 4102938475610", "return_exchange", "normal"),
    ("where is my package? tracking says nothing for 5 days", "logistics", "normal"),
    ("我要投诉，再不处理就打12315", "complaint", "urgent"),
    ("退款申请提交三天了，钱还没到账", "refund", "normal"),
    ("快递显示已签收但我根本没收到，包裹在哪？", "logistics", "normal"),
    ("收到的杯子是碎的，外包装也破损了", "quality", "normal"),
    ("衣服洗了一次就掉色，质量太差", "quality", "normal"),
    ("洗衣机什么时候上门安装？师傅一直没联系我", "repair", "high"),
    ("地址写错了，麻烦帮我改地址，还没发货吧", "order_change", "normal"),
    ("请帮忙开发票，抬头是上海某某科技有限公司，税号稍后发", "invoice", "normal"),
    ("发漂什么时候能开好", "invoice", "normal"),
    ("这款有货吗？有没有优惠券", "presales", "normal"),
    ("商品有问题想退贷，怎么寄回", "return_exchange", "normal"),
    ("再不给退款我就去微博曝光你们，差评！", "complaint", "urgent"),
    ("I want a refnud, the blender arrived broken", "quality", "normal"),
    ("I'd like a refnud please, I changed my mind", "refund", "normal"),
    ("my pakage still not delivered after two weeks", "logistics", "normal"),
    (
        "The shoes are the wrong size, can I exchange them for a bigger one?",
        "return_exchange",
        "normal",
    ),
    ("This is unacceptable. I want to speak to a manager NOW", "complaint", "urgent"),
    ("Can I get a VAT invoise for order 88231?", "invoice", "normal"),
    ("Is the blue one in stock? Any coupon for first order?", "presales", "normal"),
    ("my vacuum won't turn on anymore, is it under warranty?", "repair", "normal"),
    ("please cancel my order, I ordered twice by mistake", "order_change", "normal"),
    ("热水壶插电就冒烟，差点起火！", "other", "urgent"),
    ("你好", "other", "normal"),
]


@pytest.mark.parametrize(("text", "category", "priority"), EXAMPLES)
async def test_realistic_messages(
    ruleset: RuleSet, make_env: MakeEnvelope, text: str, category: str, priority: str
) -> None:
    """A customer's message lands in the right category with the right urgency."""
    env = await classify(make_env(text), ruleset.classifier)
    assert env.labels is not None
    assert (env.labels.category, env.labels.priority) == (category, priority), env.labels


async def test_complaint_is_tagged_and_explained(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A 12315 threat shows the legal tag and the words that triggered it."""
    env = await classify(make_env("我要投诉，再不处理就打12315"), ruleset.classifier)
    assert env.labels is not None
    assert "legal_threat" in env.labels.tags
    assert {"投诉", "12315"} <= set(env.labels.matched)
    assert env.labels.confidence == 1.0


async def test_full_width_text_matches(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """Text typed with a full-width keyboard is understood like plain text."""
    env = await classify(make_env("ＲＥＦＵＮＤ ｐｌｅａｓｅ，打１２３１５"), ruleset.classifier)
    assert env.labels is not None
    assert {"refund", "12315"} <= set(env.labels.matched)
    assert env.labels.priority == "urgent"


async def test_typo_is_reported_with_what_was_written(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """A typo still counts, and the label shows which keyword it was taken for."""
    env = await classify(make_env("where is my pakage"), ruleset.classifier)
    assert env.labels is not None
    assert "package~pakage" in env.labels.matched


async def test_typo_counts_less_than_exact(ruleset: RuleSet) -> None:
    """A message with a typo is classified with less confidence than the clean one."""
    exact = label(ruleset.classifier.find("refund"), ruleset.classifier)
    typo = label(ruleset.classifier.find("refnud"), ruleset.classifier)
    assert exact.category == typo.category == "refund"
    assert typo.confidence < exact.confidence


@pytest.mark.parametrize(
    "text",
    [
        "I managed to sort it out myself, thanks",
        "just shopping around today",
        "the parcel was tracked",
        "I have a private question",
    ],
)
async def test_everyday_words_are_not_mistaken_for_keywords(ruleset: RuleSet, text: str) -> None:
    """Ordinary words near a keyword (managed/manager, private/vat) do not change the label."""
    hits = ruleset.classifier.find(text)
    assert all(h.exact for h in hits), hits
    assert "vat" not in {h.rule.key for h in hits}


async def test_english_endings_match(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """`refunded` and `returns` count as the keywords `refund` and `return`."""
    hits = ruleset.classifier.find("it was refunded? no, returns are slow")
    assert {h.rule.key for h in hits} >= {"refund", "return"}


async def test_subject_counts(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """An email whose subject says 发票 is an invoice request even if the body does not."""
    env = await classify(make_env("见附件，谢谢", subject="申请发票"), ruleset.classifier)
    assert env.labels is not None
    assert env.labels.category == "invoice"


async def test_no_match_falls_back_with_zero_confidence(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """A message with no known words goes to `other`, marked as a guess."""
    env = await classify(make_env("在吗？"), ruleset.classifier)
    assert env.labels is not None
    assert env.labels.category == "other"
    assert env.labels.confidence == 0.0
    assert env.labels.matched == ()


async def test_complaint_category_is_at_least_high(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """A plain English complaint is handled ahead of routine tickets."""
    env = await classify(
        make_env("I want to file a complaint about your service"), ruleset.classifier
    )
    assert env.labels is not None
    assert env.labels.category == "complaint"
    assert env.labels.priority in ("high", "urgent")


async def test_returns_a_copy(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """Classifying leaves the incoming envelope as it was."""
    original = make_env("退款")
    env = await classify(original, ruleset.classifier)
    assert original.labels is None
    assert env.labels is not None
    assert env.model_dump(exclude={"labels"}) == original.model_dump(exclude={"labels"})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_valid_label(text: str) -> None:
    """Whatever a customer types, the classifier answers with a known category and priority."""
    labels = label(SHIPPED.classifier.find(text), SHIPPED.classifier)
    assert labels.category in SHIPPED.classifier.spec.categories
    assert labels.priority in PRIORITIES
    assert 0.0 <= labels.confidence <= 1.0
