"""The classify stage: category, priority and tags from the keyword rules."""

from __future__ import annotations

from collections.abc import Sequence

from intake_hub.envelope import PRIORITIES, Envelope, Labels, Priority
from intake_hub.rules.classifier import ClassifierRules, Hit


def _text(env: Envelope) -> str:
    return f"{env.subject}\n{env.text}" if env.subject else env.text


def label(hits: Sequence[Hit], rules: ClassifierRules) -> Labels:
    """Turn term hits into labels: the best-scoring category, the highest priority, all tags."""
    matching = rules.spec.matching
    scores: dict[str, float] = {}
    priorities: list[Priority] = [rules.spec.priority.default]
    tags: dict[str, None] = {}
    for hit in hits:
        factor = 1.0 if hit.exact else matching.fuzzy_weight
        for category, weight in hit.rule.categories:
            scores[category] = scores.get(category, 0.0) + weight * factor
        if hit.rule.priority is not None:
            priorities.append(hit.rule.priority)
        tags.update(dict.fromkeys(hit.rule.tags))
    # Ties go to the category listed first in classifier.yaml.
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], rules.order[kv[0]]))
    if ranked and ranked[0][1] >= matching.min_score:
        category, top = ranked[0]
        share = top / sum(scores.values())
        confidence = round(share * min(1.0, top / matching.confident_score), 2)
    else:
        category, confidence = rules.spec.fallback, 0.0
    floor = rules.spec.categories[category].priority
    if floor is not None:
        priorities.append(floor)
    return Labels(
        category=category,
        priority=max(priorities, key=PRIORITIES.index),
        tags=tuple(tags),
        confidence=confidence,
        matched=tuple(hit.label for hit in hits),
    )


async def classify(env: Envelope, rules: ClassifierRules) -> Envelope:
    """Set `labels` from the subject and text of the message."""
    return env.model_copy(update={"labels": label(rules.find(_text(env)), rules)})
