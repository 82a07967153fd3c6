"""`classifier.yaml`: categories, priority signals and tags, compiled once into a term index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import ahocorasick  # type: ignore[import-not-found]
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from intake_hub.envelope import PRIORITIES, Channel, Priority
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
    variant_weight: float = Field(0.9, gt=0, le=1)
    min_score: float = Field(1.0, gt=0)
    confident_score: float = Field(4.0, gt=0)
    secondary_score: float = Field(2.0, gt=0)
    exact_only: frozenset[Term] = frozenset()


class Keyword(_Spec):
    """A keyword with a weight, optionally counted on some channels only."""

    weight: Weight
    channels: frozenset[Channel] | None = None


class Category(_Spec):
    """One category: a display label, keywords with weights, an optional floor priority."""

    label: str = Field(min_length=1)
    priority: Priority | None = None
    channels: frozenset[Channel] | None = None
    keywords: dict[Term, Weight | Keyword] = Field(default_factory=dict)


class Phrase(_Spec):
    """Terms that together mean more than apart: all present adds `weight` to `category`."""

    all: tuple[Term, ...] = Field(min_length=2)
    category: Ident
    weight: Weight


class Negation(_Spec):
    """Cues that cancel a term right after them: 不是质量问题 is not about quality."""

    cues: tuple[Term, ...] = ()
    questions: tuple[Term, ...] = ()  # phrases holding a cue that ask rather than deny
    window: int = Field(2, ge=0, le=10)  # characters (Chinese) or words (Latin) in between


class PrioritySignals(_Spec):
    """Terms that raise a message's priority above the default, and customer tags that bump it."""

    default: Priority = "normal"
    signals: dict[Priority, list[Term]] = Field(default_factory=dict)
    customer_tags: dict[Ident, Annotated[int, Field(ge=1, le=3)]] = Field(default_factory=dict)


class ClassifierSpec(_Spec):
    """The validated content of classifier.yaml."""

    fallback: Ident = "other"
    matching: Matching = Matching()
    categories: dict[Ident, Category] = Field(min_length=1)
    variants: dict[Term, list[Term]] = Field(default_factory=dict)
    phrases: list[Phrase] = Field(default_factory=list)
    negation: Negation = Negation()
    priority: PrioritySignals = PrioritySignals()
    tags: dict[Ident, list[Term]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TermRule:
    """Everything one normalised term does when it appears in a message."""

    key: str
    term: str
    # (category, weight, channels it counts on; None = all)
    categories: tuple[tuple[str, float, frozenset[str] | None], ...] = ()
    priority: Priority | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """A term found in a message: `found` is the text as written, `similarity` 1.0 when exact."""

    rule: TermRule
    found: str
    similarity: float = 1.0
    negated_by: str | None = None  # the cue that cancels this hit, if every occurrence had one
    variant: bool = False  # a configured near-variant (退贷 for 退货), not a typo

    @property
    def exact(self) -> bool:
        """True when the term appeared as written (or with a common English ending)."""
        return self.similarity >= 1.0

    @property
    def label(self) -> str:
        """How the hit is reported in `Labels.matched`: `refund`, or `refund~refnud` for a typo."""
        return self.rule.term if self.exact else f"{self.rule.term}~{self.found}"


@dataclass(frozen=True, slots=True)
class Scores:
    """Category scores for one message on one channel, with the phrase rules that fired."""

    by_category: dict[str, float]
    phrases: tuple[Phrase, ...]

    def ranked(self, order: dict[str, int]) -> list[tuple[str, float]]:
        """Categories best first; ties go to the category listed first in classifier.yaml."""
        return sorted(self.by_category.items(), key=lambda kv: (-kv[1], order[kv[0]]))


@dataclass
class _Draft:
    term: str
    categories: list[tuple[str, float, frozenset[str] | None]] = field(default_factory=list)
    priority: Priority | None = None
    tags: list[str] = field(default_factory=list)


def _higher(a: Priority | None, b: Priority) -> Priority:
    return b if a is None or PRIORITIES.index(b) > PRIORITIES.index(a) else a


def key_of(term: str) -> str:
    """The normalised form a term is indexed and matched under."""
    return normalize(term).strip()


def _collect(spec: ClassifierSpec) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}

    def draft(term: str) -> _Draft:
        return drafts.setdefault(key_of(term), _Draft(term))

    for cat_id, category in spec.categories.items():
        for term, value in category.keywords.items():
            kw = value if isinstance(value, Keyword) else Keyword(weight=value)
            channels = kw.channels if kw.channels is not None else category.channels
            draft(term).categories.append((cat_id, kw.weight, channels))
    for priority, terms in spec.priority.signals.items():
        for term in terms:
            d = draft(term)
            d.priority = _higher(d.priority, priority)
    for tag, terms in spec.tags.items():
        for term in terms:
            d = draft(term)
            if tag not in d.tags:
                d.tags.append(tag)
    for phrase in spec.phrases:
        for term in phrase.all:
            draft(term)
    return drafts


# A word term is a sequence of slots; each slot is the set of words accepted there.
_Slots = tuple[frozenset[str], ...]
_TYPO_CACHE_MAX = 100_000


class ClassifierRules:
    """classifier.yaml compiled for matching: every term normalised and indexed at load."""

    def __init__(self, spec: ClassifierSpec) -> None:
        self.spec = spec
        self.order = {cat: i for i, cat in enumerate(spec.categories)}
        drafts = _collect(spec)
        rules = {
            key: TermRule(key, d.term, tuple(d.categories), d.priority, tuple(d.tags))
            for key, d in drafts.items()
        }
        self.terms: tuple[TermRule, ...] = tuple(rules.values())
        self.by_key = rules
        # One automaton for every term that is not plain Latin words, near-variants included.
        automaton = ahocorasick.Automaton()
        phrases: dict[str, list[tuple[_Slots, TermRule]]] = {}
        vocabulary: set[str] = set()
        fuzzy: dict[tuple[str, int], list[tuple[str, TermRule]]] = {}
        min_length = spec.matching.fuzzy_min_length
        exact_only = {key_of(t) for t in spec.matching.exact_only}
        for rule in rules.values():
            if not is_word_term(rule.key):
                automaton.add_word(rule.key, (len(rule.key), rule.key, 1.0, False))
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
                        fuzzy.setdefault((form[0], len(form)), []).append((form, rule))
        variant_weight = spec.matching.variant_weight
        for canonical, variants in spec.variants.items():
            for variant in variants:
                vkey = key_of(variant)
                if vkey not in rules:
                    entry = (len(vkey), key_of(canonical), variant_weight, True)
                    automaton.add_word(vkey, entry)
        self._automaton = automaton
        self._has_automaton = len(automaton) > 0
        if self._has_automaton:
            automaton.make_automaton()
        self._phrases = {k: tuple(v) for k, v in phrases.items()}
        self._vocabulary = frozenset(vocabulary)
        # Grouped by first letter and length: typos rarely hit the first letter (`tracked`
        # must not become `cracked`), and only close lengths can reach the score.
        self._typo_index = {
            bucket: (tuple(f for f, _ in pairs), tuple(r for _, r in pairs))
            for bucket, pairs in fuzzy.items()
        }
        self._typo_cache: dict[str, tuple[TermRule, float] | None] = {}
        self._cutoff = spec.matching.fuzzy_score / 100
        self._cues_text = tuple(
            key_of(c) for c in spec.negation.cues if not is_word_term(key_of(c))
        )
        self._phrase_keys = tuple(
            (frozenset(key_of(t) for t in phrase.all), phrase) for phrase in spec.phrases
        )
        self._scoped = tuple(
            (cat_id, c.channels) for cat_id, c in spec.categories.items() if c.channels is not None
        )
        self._questions = tuple(key_of(q) for q in spec.negation.questions)
        self._cues_words = tuple(
            tuple(words(key_of(c))) for c in spec.negation.cues if is_word_term(key_of(c))
        )

    def find(self, text: str) -> tuple[Hit, ...]:
        """Every term in `text`, each once: exact substrings, whole words, then Latin typos.

        A term whose every occurrence follows a negation cue is returned with `negated_by` set.
        """
        norm = normalize(text)
        hits: dict[str, Hit] = {}
        negated: dict[str, Hit] = {}
        if self._has_automaton:
            # Most messages hold no cue at all: then no hit needs the look-back.
            cues = tuple(c for c in self._cues_text if c in norm)
            for end, (length, key, similarity, variant) in self._automaton.iter(norm):
                start = end - length + 1
                cue = self._cue_before(norm, start, cues) if cues else None
                self._add(hits, negated, key, norm[start : end + 1], similarity, cue, variant)
        tokens = words(norm)
        word_cues = tuple(c for c in self._cues_words if c[-1] in tokens)
        for i, token in enumerate(tokens):
            for slots, rule in self._phrases.get(token, ()):
                n = len(slots)
                window = tokens[i : i + n]
                if len(window) == n and all(w in s for w, s in zip(window, slots, strict=True)):
                    cue = self._word_cue_before(tokens, i, word_cues)
                    self._add(hits, negated, rule.key, " ".join(window), 1.0, cue)
            if token not in self._vocabulary:
                typo = self._typo(token)
                if typo is not None:
                    cue = self._word_cue_before(tokens, i, word_cues)
                    self._add(hits, negated, typo[0].key, token, typo[1], cue)
        for key, hit in negated.items():
            hits.setdefault(key, hit)
        return tuple(hits.values())

    def _add(
        self,
        hits: dict[str, Hit],
        negated: dict[str, Hit],
        key: str,
        found: str,
        similarity: float,
        cue: str | None,
        variant: bool = False,
    ) -> None:
        rule = self.by_key[key]
        if cue is not None:
            negated.setdefault(key, Hit(rule, found, similarity, cue, variant))
            return
        known = hits.get(key)
        if known is None or known.similarity < similarity:
            hits[key] = Hit(rule, found, similarity, variant=variant)

    def _cue_before(self, norm: str, start: int, cues: tuple[str, ...]) -> str | None:
        window = self.spec.negation.window
        before = norm[max(0, start - window - 8) : start].rstrip()
        for question in self._questions:
            at = before.rfind(question)
            if at >= 0 and len(before) - (at + len(question)) <= window:
                return None
        for cue in cues:
            at = before.rfind(cue)
            if at >= 0 and len(before) - (at + len(cue)) <= window:
                return cue
        return None

    def _word_cue_before(
        self, tokens: list[str], i: int, cues: tuple[tuple[str, ...], ...]
    ) -> str | None:
        window = self.spec.negation.window
        for cue in cues:
            n = len(cue)
            for end in range(max(0, i - window), i):
                if tuple(tokens[end - n + 1 : end + 1]) == cue:
                    return " ".join(cue)
        return None

    def _typo(self, token: str) -> tuple[TermRule, float] | None:
        if len(token) < self.spec.matching.fuzzy_min_length or not token.isalpha():
            return None
        if token in self._typo_cache:
            return self._typo_cache[token]
        best: tuple[TermRule, float] | None = None
        length = len(token)
        # Similarity 1 - distance / longer length: a length gap alone costs that much.
        spread = int(length * (1 - self._cutoff) / self._cutoff) + 1
        for size in range(length - spread, length + spread + 1):
            choices, rules = self._typo_index.get((token[0], size), ((), ()))
            if not choices:
                continue
            found = process.extractOne(
                token,
                choices,
                scorer=DamerauLevenshtein.normalized_similarity,
                score_cutoff=self._cutoff,
            )
            if found is not None and (best is None or found[1] > best[1]):
                best = (rules[found[2]], round(found[1], 3))
        if len(self._typo_cache) >= _TYPO_CACHE_MAX:
            self._typo_cache.clear()
        self._typo_cache[token] = best
        return best

    def score(self, hits: tuple[Hit, ...] | list[Hit], channel: str | None = None) -> Scores:
        """Sum the weights of the counted hits per category, then add the phrase rules."""
        fuzzy_weight = self.spec.matching.fuzzy_weight
        scores: dict[str, float] = {}
        present: set[str] = set()
        for hit in hits:
            if hit.negated_by is not None:
                continue
            present.add(hit.rule.key)
            factor = 1.0 if hit.exact else hit.similarity if hit.variant else fuzzy_weight
            for category, weight, channels in hit.rule.categories:
                if channels is not None and channel is not None and channel not in channels:
                    continue
                scores[category] = scores.get(category, 0.0) + weight * factor
        fired = []
        for keys, phrase in self._phrase_keys:
            if present.issuperset(keys):
                scores[phrase.category] = scores.get(phrase.category, 0.0) + phrase.weight
                fired.append(phrase)
        if channel is not None:
            for cat_id, channels in self._scoped:
                if channel not in channels:
                    scores.pop(cat_id, None)
        return Scores(scores, tuple(fired))
