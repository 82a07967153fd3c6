"""`replies.yaml`: automatic reply templates per kind and language."""

from __future__ import annotations

from string import Formatter
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Lang = Literal["zh", "en"]

# What an acknowledgement may say; both are required so the customer can always follow up.
ACK_PLACEHOLDERS = frozenset({"ticket", "status_url"})


def _check_ack(template: str) -> str:
    try:
        fields = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"broken placeholder: {exc}") from None
    names: set[str] = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        # Only bare names: `{ticket.__class__}` or `{ticket!r}` would let a template reach code.
        if name not in ACK_PLACEHOLDERS or spec or conversion:
            allowed = ", ".join(f"{{{n}}}" for n in sorted(ACK_PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed}")
        names.add(name)
    missing = sorted(ACK_PLACEHOLDERS - names)
    if missing:
        raise ValueError("missing placeholder " + ", ".join(f"{{{n}}}" for n in missing))
    return template


AckTemplate = Annotated[str, Field(min_length=1), AfterValidator(_check_ack)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AckTemplates(_Spec):
    """The acknowledgement in each language."""

    zh: AckTemplate
    en: AckTemplate

    def for_lang(self, lang: Lang) -> str:
        """The template for `lang`."""
        return self.zh if lang == "zh" else self.en


class Templates(_Spec):
    """Reply templates by kind."""

    ack: AckTemplates


class ReplyRules(_Spec):
    """The validated content of replies.yaml."""

    default_lang: Lang = "zh"
    templates: Templates
