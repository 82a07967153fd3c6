"""Cleaning customer text before anything stores or shows it."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator


def clean(text: str) -> str:
    """NFC-normalise, drop control and unassigned characters (keep newlines, tabs) and trim."""
    text = unicodedata.normalize("NFC", text)
    if text.isprintable():  # the common case, checked in C
        return text.strip()
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C").strip()


def _not_blank(value: str) -> str:
    value = clean(value)
    if not value:
        raise ValueError("must not be blank")
    return value


# Text a person typed: control characters and surrounding space removed, never empty.
NonBlank = Annotated[str, AfterValidator(_not_blank)]
