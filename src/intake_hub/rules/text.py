"""Text normalisation shared by rule compilation and matching, so both sides agree."""

from __future__ import annotations

import re
import unicodedata

# Latin letters (with accents) and digits: the units fuzzy and whole-word matching work on.
_WORD = re.compile(r"[0-9a-z\u00c0-\u024f]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


def normalize(text: str) -> str:
    """Casefold and fold full-width forms to half-width (NFKC): `ＲＥＦＵＮＤ１` -> `refund1`."""
    if text.isascii():
        # NFKC leaves ASCII as it is, and casefold is lower there: skip the table walk.
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


def words(normalized: str) -> list[str]:
    """The Latin words and numbers in normalised text, in order."""
    return _WORD.findall(normalized)


def is_word_term(normalized: str) -> bool:
    """True when a term is made of Latin words and numbers only, so it matches whole words."""
    rest = _WORD.sub("", normalized)
    return bool(words(normalized)) and not any(c.isalnum() for c in rest)


def has_cjk(text: str) -> bool:
    """True when the text holds at least one Chinese character."""
    return _CJK.search(text) is not None


def has_latin(text: str) -> bool:
    """True when the text holds at least one Latin letter."""
    return any(c.isalpha() and c.isascii() for c in text)


def word_forms(word: str) -> frozenset[str]:
    """A keyword word and its common English endings: `refund` -> `refunds`, `refunded`."""
    if not word.isalpha():
        return frozenset({word})
    forms = {word, word + "s", word + "es", word + "ed", word + "ing"}
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing"}
    if word.endswith("y"):
        forms.add(word[:-1] + "ies")
    return frozenset(forms)
