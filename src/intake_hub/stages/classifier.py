"""The classify stage: category, priority, tags and extracted fields from the keyword rules."""

from __future__ import annotations

from collections.abc import Sequence

from intake_hub.envelope import PRIORITIES, Envelope, Extracted, Labels, Priority
from intake_hub.rules.classifier import ClassifierRules, Hit
from intake_hub.rules.extract import extract


def _text(env: Envelope) -> str:
    return f"{env.subject}\n{env.text}" if env.subject else env.text


def prioritize(
    hits: Sequence[Hit],
    rules: ClassifierRules,
    category: str,
    customer_tags: Sequence[str] = (),
) -> tuple[Priority, tuple[str, ...]]:
    """The message's priority and the reason for each step that raised it."""
    spec = rules.spec.priority
    priority: Priority = spec.default
    reasons = [f"default {spec.default}"]
    for hit in hits:
        signal = hit.rule.priority
        if hit.negated_by is None and signal is not None:
            reasons.append(f"'{hit.label}' signals {signal}")
            priority = max(priority, signal, key=PRIORITIES.index)
    floor = rules.spec.categories[category].priority
    if floor is not None:
        reasons.append(f"category '{category}' is at least {floor}")
        priority = max(priority, floor, key=PRIORITIES.index)
    for tag in dict.fromkeys(customer_tags):
        steps = spec.customer_tags.get(tag)
        if steps:
            raised = PRIORITIES[min(PRIORITIES.index(priority) + steps, len(PRIORITIES) - 1)]
            reasons.append(f"customer tag '{tag}' raises {priority} by {steps} -> {raised}")
            priority = raised
    return priority, tuple(reasons)


def label(
    hits: Sequence[Hit],
    rules: ClassifierRules,
    channel: str | None = None,
    customer_tags: Sequence[str] = (),
    *,
    extracted: Extracted | None = None,
    rules_version: str | None = None,
) -> Labels:
    """Turn term hits into labels: the best category, secondary ones, priority and tags."""
    matching = rules.spec.matching
    scores = rules.score(list(hits), channel)
    ranked = scores.ranked(rules.order)
    if ranked and ranked[0][1] >= matching.min_score:
        category, top = ranked[0]
        share = top / sum(scores.by_category.values())
        confidence = round(share * min(1.0, top / matching.confident_score), 2)
        secondary = tuple(c for c, s in ranked[1:] if s >= matching.secondary_score)
    else:
        category, confidence, secondary = rules.spec.fallback, 0.0, ()
    counted = [hit for hit in hits if hit.negated_by is None]
    tags: dict[str, None] = {}
    for hit in counted:
        tags.update(dict.fromkeys(hit.rule.tags))
    priority, reasons = prioritize(counted, rules, category, customer_tags)
    # Validated, not `model_construct`: pydantic-core checks these nine fields in about
    # 1.7 us, faster than model_construct's Python loop over the fields (2.7 us).
    return Labels(
        category=category,
        priority=priority,
        tags=tuple(tags),
        confidence=confidence,
        matched=tuple(hit.label for hit in counted),
        secondary=secondary,
        priority_reasons=reasons,
        extracted=extracted,
        rules_version=rules_version,
    )


async def classify(
    env: Envelope, rules: ClassifierRules, rules_version: str | None = None
) -> Envelope:
    """Set `labels` from the subject and text of the message, with its extracted fields."""
    text = _text(env)
    labels = label(
        rules.find(text),
        rules,
        env.channel,
        env.customer.tags,
        extracted=extract(text),
        rules_version=rules_version,
    )
    return env.model_copy(update={"labels": labels})
