"""`faq.yaml`: knowledge-base answers, matched fuzzily against questions and their variants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process

from intake_hub.rules.replies import AckTemplates, Lang, Texts
from intake_hub.rules.text import normalize

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FaqEntry(_Spec):
    """One knowledge-base answer and the ways customers ask for it."""

    id: Ident
    question: str = Field(min_length=1)
    variants: tuple[str, ...] = ()
    answer: Texts


class FaqSpec(_Spec):
    """The validated content of faq.yaml."""

    # rapidfuzz WRatio score (0-100) a message must reach against a question or variant.
    threshold: float = Field(default=86.0, ge=50.0, le=100.0)
    follow_up: Texts = Texts(
        zh="（自动回复）这个回答解决您的问题了吗？如未解决，请直接回复，客服会跟进。",
        en="(Automatic reply) Did this answer your question? If not, just reply and an agent "
        "will follow up.",
    )
    # Keeps the ticket number and status link in an FAQ answer, should the customer need more.
    ticket_line: AckTemplates = AckTemplates(
        zh="工单号 {ticket}，进度：{status_url}",
        en="Ticket {ticket}, progress: {status_url}",
    )
    entries: tuple[FaqEntry, ...] = ()


@dataclass(frozen=True)
class FaqMatch:
    """The entry a message matched, the phrasing it matched and the score."""

    entry: FaqEntry
    matched: str
    score: float


class FaqIndex:
    """The FAQ compiled for matching: every question and variant, normalised once."""

    def __init__(self, spec: FaqSpec) -> None:
        self.spec = spec
        self._choices: list[str] = []
        self._owner: list[FaqEntry] = []
        for entry in spec.entries:
            for phrasing in (entry.question, *entry.variants):
                self._choices.append(normalize(phrasing))
                self._owner.append(entry)

    def match(self, text: str) -> FaqMatch | None:
        """The best entry for `text` at or above the threshold, or None."""
        if not self._choices:
            return None
        query = normalize(text).strip()
        if not query:
            return None
        # WRatio weighs partial matches, so a question inside a longer message still scores.
        best = process.extractOne(
            query, self._choices, scorer=fuzz.WRatio, score_cutoff=self.spec.threshold
        )
        if best is None:
            return None
        _, score, index = best
        return FaqMatch(self._owner[index], self._choices[index], float(score))

    def answer(self, match: FaqMatch, lang: Lang, ticket: str, status_url: str) -> str:
        """The answer in `lang`, the "did this answer your question?" line and the ticket."""
        tail = self.spec.ticket_line.for_lang(lang).format(ticket=ticket, status_url=status_url)
        return "\n".join(
            (match.entry.answer.for_lang(lang), self.spec.follow_up.for_lang(lang), tail)
        )
