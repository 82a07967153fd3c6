"""Loading the rules directory as one validated, versioned, immutable RuleSet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from intake_hub.rules.classifier import ClassifierRules, ClassifierSpec, key_of
from intake_hub.rules.errors import Problem, RulesError
from intake_hub.rules.faq import FaqIndex, FaqSpec
from intake_hub.rules.replies import ReplyRules
from intake_hub.rules.routing import RoutingRules
from intake_hub.rules.source import Document, read_document

CLASSIFIER_FILE = "classifier.yaml"
REPLIES_FILE = "replies.yaml"
ROUTING_FILE = "routing.yaml"
FAQ_FILE = "faq.yaml"
FILES = (CLASSIFIER_FILE, REPLIES_FILE, ROUTING_FILE)
# Read when present: a shop without a knowledge base simply has no FAQ answers.
OPTIONAL_FILES = (FAQ_FILE,)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RuleSet:
    """Every rule file, validated together; `version` changes whenever any file's bytes do."""

    classifier: ClassifierRules
    replies: ReplyRules
    routing: RoutingRules
    version: str
    faq: FaqIndex = field(default_factory=lambda: FaqIndex(FaqSpec()))


def _version(docs: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(doc.path.name.encode() + b"\0" + doc.raw + b"\0")
    return digest.hexdigest()[:12]


def _check_classifier(spec: ClassifierSpec, doc: Document) -> list[Problem]:
    problems = []
    if spec.fallback not in spec.categories:
        problems.append(
            doc.problem(("fallback",), f"fallback category '{spec.fallback}' is not defined")
        )
    for i, phrase in enumerate(spec.phrases):
        if phrase.category not in spec.categories:
            problems.append(
                doc.problem(
                    ("phrases", i, "category"), f"category '{phrase.category}' is not defined"
                )
            )
    terms = {key_of(t) for c in spec.categories.values() for t in c.keywords}
    for canonical in spec.variants:
        if key_of(canonical) not in terms:
            problems.append(
                doc.problem(
                    ("variants", canonical),
                    f"'{canonical}' is not a keyword of any category: its variants would count "
                    "for nothing",
                )
            )
    return problems


def _check_routing(
    routing: RoutingRules, doc: Document, classifier: ClassifierSpec | None
) -> list[Problem]:
    problems = []
    if routing.fallback not in routing.teams:
        problems.append(
            doc.problem(("fallback",), f"fallback team '{routing.fallback}' is not defined")
        )
    for category, target in routing.categories.items():
        if classifier is not None and category not in classifier.categories:
            problems.append(
                doc.problem(
                    ("categories", category),
                    f"category '{category}' is not defined in {CLASSIFIER_FILE}",
                )
            )
        if target.team not in routing.teams:
            problems.append(
                doc.problem(
                    ("categories", category, "team"),
                    f"team '{target.team}' is not defined under teams",
                )
            )
    for i, rule in enumerate(routing.rules):
        if rule.team is not None and rule.team not in routing.teams:
            problems.append(
                doc.problem(("rules", i, "team"), f"team '{rule.team}' is not defined under teams")
            )
    return problems


def load_rules(rules_dir: Path) -> RuleSet:
    """Read, validate and compile classifier.yaml, replies.yaml and routing.yaml in `rules_dir`.

    Raises RulesError listing every problem found, each with its file and line.
    """
    problems: list[Problem] = []
    docs: dict[str, Document] = {}
    for name in FILES:
        try:
            docs[name] = read_document(rules_dir / name)
        except RulesError as exc:
            problems.extend(exc.problems)
    for name in OPTIONAL_FILES:
        if (rules_dir / name).exists():
            try:
                docs[name] = read_document(rules_dir / name)
            except RulesError as exc:
                problems.extend(exc.problems)

    def validate(name: str, model: type[M]) -> M | None:
        if name not in docs:
            return None
        try:
            return docs[name].validate(model)
        except RulesError as exc:
            problems.extend(exc.problems)
            return None

    classifier = validate(CLASSIFIER_FILE, ClassifierSpec)
    replies = validate(REPLIES_FILE, ReplyRules)
    routing = validate(ROUTING_FILE, RoutingRules)
    faq = validate(FAQ_FILE, FaqSpec) if FAQ_FILE in docs else FaqSpec()
    if classifier is not None:
        problems.extend(_check_classifier(classifier, docs[CLASSIFIER_FILE]))
    if routing is not None:
        problems.extend(_check_routing(routing, docs[ROUTING_FILE], classifier))
    if problems or classifier is None or replies is None or routing is None or faq is None:
        raise RulesError(problems)
    return RuleSet(
        classifier=ClassifierRules(classifier),
        replies=replies,
        routing=routing,
        version=_version([docs[name] for name in (*FILES, *OPTIONAL_FILES) if name in docs]),
        faq=FaqIndex(faq),
    )
