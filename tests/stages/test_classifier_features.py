"""Automaton matching, near-variants, negation, phrases, channels, secondary labels, VIP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intake_hub.envelope import CustomerRef, Envelope
from intake_hub.rules import RuleSet
from intake_hub.rules.classifier import ClassifierRules, ClassifierSpec
from intake_hub.stages.classifier import classify, label

MakeEnvelope = Callable[..., Envelope]


def compile_rules(**extra: Any) -> ClassifierRules:
    """A small rule pack for one feature, with `extra` top-level settings."""
    spec: dict[str, Any] = {
        "categories": {
            "complaint": {"label": "c", "keywords": {"投诉": 4}},
            "refund": {"label": "r", "keywords": {"退款": 3, "refund": 3}},
            "return_exchange": {"label": "x", "keywords": {"退货": 3}},
            "quality": {"label": "q", "keywords": {"质量": 3, "damaged": 3}},
            "repair": {"label": "p", "keywords": {"上门": {"weight": 2, "channels": ["phone"]}}},
            "other": {"label": "o"},
        },
        **extra,
    }
    return ClassifierRules(ClassifierSpec.model_validate(spec))


def test_many_chinese_terms_are_found_in_one_pass(ruleset: RuleSet) -> None:
    """Overlapping Chinese terms are all found: 物流延迟 and 物流 both count."""
    keys = {h.rule.key for h in ruleset.classifier.find("物流延迟，快递丢件了")}
    assert {"物流延迟", "物流", "快递", "丢件"} <= keys


def test_near_variant_counts_as_its_term() -> None:
    """退贷 is read as 退货, reported as a variant and weighted a little below the term."""
    rules = compile_rules(variants={"退货": ["退贷"]}, matching={"variant_weight": 0.9})
    hits = rules.find("想退贷")
    assert [(h.rule.key, h.found, h.variant) for h in hits] == [("退货", "退贷", True)]
    labels = label(hits, rules)
    assert labels.category == "return_exchange"
    assert labels.matched == ("退货~退贷",)


def test_negated_term_does_not_count() -> None:
    """不是质量问题 does not make a quality ticket; the negated hit is still reported."""
    rules = compile_rules(negation={"cues": ["不是", "not"], "window": 2})
    hits = rules.find("不是质量问题，想退货")
    assert {h.rule.key: h.negated_by for h in hits} == {"质量": "不是", "退货": None}
    assert label(hits, rules).category == "return_exchange"
    assert label(rules.find("it is not damaged, just a refund"), rules).category == "refund"


def test_negation_only_reaches_its_window() -> None:
    """A cue far before a term leaves it alone."""
    rules = compile_rules(negation={"cues": ["不是"], "window": 2})
    assert label(rules.find("不是我说，这个质量太差"), rules).category == "quality"


def test_question_is_not_a_negation() -> None:
    """是不是质量问题 asks about quality rather than denying it."""
    rules = compile_rules(negation={"cues": ["不是"], "questions": ["是不是"]})
    assert label(rules.find("是不是质量问题"), rules).category == "quality"


def test_phrase_adds_weight_when_all_terms_appear() -> None:
    """退货 with 退款 together is a return, though 退款 alone is a refund."""
    phrase = {"all": ["退货", "退款"], "category": "return_exchange", "weight": 2}
    rules = compile_rules(phrases=[phrase])
    assert label(rules.find("退款"), rules).category == "refund"
    assert label(rules.find("退货退款"), rules).category == "return_exchange"
    assert rules.score(list(rules.find("退货退款"))).phrases[0].category == "return_exchange"


def test_keyword_scoped_to_a_channel() -> None:
    """上门 counts for repair on the phone channel only."""
    rules = compile_rules()
    hits = rules.find("师傅什么时候上门")
    assert label(hits, rules, channel="phone").category == "repair"
    assert label(hits, rules, channel="web").category == "other"


def test_category_scoped_to_a_channel() -> None:
    """A category limited to some channels is never chosen on the others."""
    spec = ClassifierSpec.model_validate(
        {
            "categories": {
                "complaint": {"label": "c", "channels": ["wechat"], "keywords": {"投诉": 4}},
                "other": {"label": "o"},
            }
        }
    )
    rules = ClassifierRules(spec)
    assert label(rules.find("投诉"), rules, channel="web").category == "other"
    assert label(rules.find("投诉"), rules, channel="wechat").category == "complaint"


def test_secondary_labels_above_threshold() -> None:
    """A message about two things names the second one too."""
    rules = compile_rules(matching={"secondary_score": 2.0})
    labels = label(rules.find("投诉！质量太差还不给退款"), rules)
    assert labels.category == "complaint"
    assert labels.secondary == ("refund", "quality")


def test_vip_customer_goes_up_one_level(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """The same message from a VIP customer is one priority level higher, and says why."""
    text = "where is my parcel? no update for 5 days"
    plain = label(ruleset.classifier.find(text), ruleset.classifier)
    vip = label(ruleset.classifier.find(text), ruleset.classifier, customer_tags=["vip"])
    assert (plain.priority, vip.priority) == ("normal", "high")
    assert any("vip" in reason for reason in vip.priority_reasons)


async def test_complaint_signal_is_urgent_with_reason(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """A 12315 threat is urgent, and the reason names the signal."""
    env = await classify(make_env("我要投诉，再不处理就打12315"), ruleset.classifier, "v1")
    assert env.labels is not None
    assert env.labels.priority == "urgent"
    assert any("12315" in r and "urgent" in r for r in env.labels.priority_reasons)
    assert env.labels.rules_version == "v1"


async def test_customer_tags_on_the_envelope_count(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """Tags the merchant keeps on the customer reach the priority."""
    env = make_env("退款什么时候到账？")
    vip = env.model_copy(update={"customer": CustomerRef(key="c-1", tags=("vip",))})
    plain_labels = (await classify(env, ruleset.classifier)).labels
    vip_labels = (await classify(vip, ruleset.classifier)).labels
    assert plain_labels is not None and vip_labels is not None
    assert (plain_labels.priority, vip_labels.priority) == ("normal", "high")


async def test_extracted_fields_ride_on_the_labels(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """The order number in the text is on the envelope for the router and agents."""
    env = await classify(make_env("尺码不对，想换大一码，订单号 4102938475610"), ruleset.classifier)
    assert env.labels is not None and env.labels.extracted is not None
    assert env.labels.extracted.order_numbers == ("4102938475610",)


def test_latin_typo_lookups_are_cached(ruleset: RuleSet) -> None:
    """A repeated typo is scored once and gives the same answer from the cache."""
    first = ruleset.classifier.find("my pakage is late")
    again = ruleset.classifier.find("my pakage is late")
    assert first == again
    assert any(h.label == "package~pakage" for h in again)
