"""`classifier.yaml`: categories, priority signals and tags, compiled once into a term index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from intake_hub.envelope import PRIORITIES, Priority
from intake_hub.rules.text import is_word_term, normalize, word_forms, words


def _as_text(value: Any) -> Any:
    # An unquoted `12315` arrives as an int; a keyword is always text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _not_blank(value: str) -> str:
    if not normalize(value).strip():
        raise ValueError("a term must not be blank")
    return value


Term = Annotated[str, BeforeValidator(_as_text), AfterValidator(_not_blank)]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Weight = Annotated[float, Field(gt=0, le=100)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Matching(_Spec):
    """How terms match and how hits turn into a category."""

    fuzzy_score: float = Field(80.0, ge=50, le=100)
    fuzzy_min_length: int = Field(6, ge=3)
    fuzzy_weight: float = Field(0.8, gt=0, le=1)
    min_score: float = Field(1.0, gt=0)
    confident_score: float = Field(4.0, gt=0)
    exact_only: frozenset[Term] = frozenset()


class Category(_Spec):
    """One category: a display label, keywords with weights, an optional floor priority."""

    label: str = Field(min_length=1)
    priority: Priority | None = None
    keywords: dict[Term, Weight] = Field(default_factory=dict)


class PrioritySignals(_Spec):
    """Terms that raise a message's priority above the default."""

    default: Priority = "normal"
    signals: dict[Priority, list[Term]] = Field(default_factory=dict)


class ClassifierSpec(_Spec):
    """The validated content of classifier.yaml."""

    fallback: Ident = "other"
    matching: Matching = Matching()
    categories: dict[Ident, Category] = Field(min_length=1)
    priority: PrioritySignals = PrioritySignals()
    tags: dict[Ident, list[Term]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TermRule:
    """Everything one normalised term does when it appears in a message."""

    key: str
    term: str
    categories: tuple[tuple[str, float], ...] = ()
    priority: Priority | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """A term found in a message: `found` is the text as written, `similarity` 1.0 when exact."""

    rule: TermRule
    found: str
    similarity: float = 1.0

    @property
    def exact(self) -> bool:
        """True when the term appeared as written (or with a common English ending)."""
        return self.similarity >= 1.0

    @property
    def label(self) -> str:
        """How the hit is reported in `Labels.matched`: `refund`, or `refund~refnud` for a typo."""
        return self.rule.term if self.exact else f"{self.rule.term}~{self.found}"


@dataclass
class _Draft:
    term: str
    categories: list[tuple[str, float]] = field(default_factory=list)
    priority: Priority | None = None
    tags: list[str] = field(default_factory=list)


def _higher(a: Priority | None, b: Priority) -> Priority:
    return b if a is None or PRIORITIES.index(b) > PRIORITIES.index(a) else a


def _collect(spec: ClassifierSpec) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}

    def draft(term: str) -> _Draft:
        return drafts.setdefault(normalize(term).strip(), _Draft(term))

    for cat_id, category in spec.categories.items():
        for term, weight in category.keywords.items():
            draft(term).categories.append((cat_id, weight))
    for priority, terms in spec.priority.signals.items():
        for term in terms:
            d = draft(term)
            d.priority = _higher(d.priority, priority)
    for tag, terms in spec.tags.items():
        for term in terms:
            d = draft(term)
            if tag not in d.tags:
                d.tags.append(tag)
    return drafts


# A word term is a sequence of slots; each slot is the set of words accepted there.
_Slots = tuple[frozenset[str], ...]


class ClassifierRules:
    """classifier.yaml compiled for matching: every term normalised and indexed at load."""

    def __init__(self, spec: ClassifierSpec) -> None:
        self.spec = spec
        self.order = {cat: i for i, cat in enumerate(spec.categories)}
        rules = [
            TermRule(key, d.term, tuple(d.categories), d.priority, tuple(d.tags))
            for key, d in _collect(spec).items()
        ]
        self.terms: tuple[TermRule, ...] = tuple(rules)
        substrings: list[tuple[str, TermRule]] = []
        phrases: dict[str, list[tuple[_Slots, TermRule]]] = {}
        vocabulary: set[str] = set()
        fuzzy: dict[str, list[tuple[str, TermRule]]] = {}
        min_length = spec.matching.fuzzy_min_length
        exact_only = {normalize(t).strip() for t in spec.matching.exact_only}
        for rule in rules:
            if not is_word_term(rule.key):
                substrings.append((rule.key, rule))
                continue
            parts = words(rule.key)
            # Only the last word takes English endings: `speak to a manager` -> `managers`.
            slots = (*(frozenset({w}) for w in parts[:-1]), word_forms(parts[-1]))
            for slot in slots:
                vocabulary |= slot
            for form in slots[0]:
                phrases.setdefault(form, []).append((slots, rule))
            if len(slots) == 1 and rule.key not in exact_only:
                for form in slots[0]:
                    if len(form) >= min_length:
                        fuzzy.setdefault(form[0], []).append((form, rule))
        self._substrings = tuple(substrings)
        self._phrases = {k: tuple(v) for k, v in phrases.items()}
        self._vocabulary = frozenset(vocabulary)
        # Grouped by first letter: typos rarely hit it, and `tracked` must not become `cracked`.
        self._typo_index = {
            first: (tuple(f for f, _ in pairs), tuple(r for _, r in pairs))
            for first, pairs in fuzzy.items()
        }
        self._cutoff = spec.matching.fuzzy_score / 100

    def find(self, text: str) -> tuple[Hit, ...]:
        """Every term in `text`, each once: exact substrings, whole words, then Latin typos."""
        norm = normalize(text)
        hits: dict[str, Hit] = {}
        for needle, rule in self._substrings:
            if needle in norm:
                hits[rule.key] = Hit(rule, rule.term)
        tokens = words(norm)
        for i, token in enumerate(tokens):
            for slots, rule in self._phrases.get(token, ()):
                n = len(slots)
                window = tokens[i : i + n]
                if len(window) == n and all(w in s for w, s in zip(window, slots, strict=True)):
                    hits[rule.key] = Hit(rule, " ".join(window))
            if token not in self._vocabulary:
                self._match_typo(token, hits)
        return tuple(hits.values())

    def _match_typo(self, token: str, hits: dict[str, Hit]) -> None:
        if len(token) < self.spec.matching.fuzzy_min_length or not token.isalpha():
            return
        choices, rules = self._typo_index.get(token[0], ((), ()))
        best = process.extractOne(
            token,
            choices,
            scorer=DamerauLevenshtein.normalized_similarity,
            score_cutoff=self._cutoff,
        )
        if best is None:
            return
        rule = rules[best[2]]
        if rule.key not in hits or hits[rule.key].similarity < best[1]:
            hits[rule.key] = Hit(rule, token, round(best[1], 3))
