"""`replies.yaml`: automatic reply templates per kind, category, channel and language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from string import Formatter
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from intake_hub.envelope import Channel

Lang = Literal["zh", "en"]

# What an acknowledgement may say; both are required so the customer can always follow up.
ACK_PLACEHOLDERS = frozenset({"ticket", "status_url"})


def _check_ack(template: str) -> str:
    return _check(template, ACK_PLACEHOLDERS, ACK_PLACEHOLDERS)


def _check(template: str, allowed: frozenset[str], required: frozenset[str]) -> str:
    try:
        fields = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"broken placeholder: {exc}") from None
    names: set[str] = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        # Only bare names: `{ticket.__class__}` or `{ticket!r}` would let a template reach code.
        if name not in allowed or spec or conversion:
            known = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {known}")
        names.add(name)
    missing = sorted(required - names)
    if missing:
        raise ValueError("missing placeholder " + ", ".join(f"{{{n}}}" for n in missing))
    return template


def _checker(*allowed: str) -> Callable[[str], str]:
    return lambda t: _check(t, frozenset(allowed), frozenset())


AckTemplate = Annotated[str, Field(min_length=1), AfterValidator(_check_ack)]
# The status header, one line per open ticket, and the quiet-hours note.
HeaderTemplate = Annotated[str, Field(min_length=1), AfterValidator(_checker("count"))]
LineTemplate = Annotated[
    str, Field(min_length=1), AfterValidator(_checker("ticket", "status", "updated", "url"))
]
PlainText = Annotated[str, Field(min_length=1), AfterValidator(_checker())]
NoticeTemplate = Annotated[
    str, Field(min_length=1), AfterValidator(_checker("ticket", "status", "status_url"))
]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AckTemplates(_Spec):
    """The acknowledgement in each language."""

    zh: AckTemplate
    en: AckTemplate

    def for_lang(self, lang: Lang) -> str:
        """The template for `lang`."""
        return self.zh if lang == "zh" else self.en


class AckOverride(AckTemplates):
    """An acknowledgement for one category and/or channel; the first matching one wins."""

    category: Ident | None = None
    channel: Channel | None = None

    def matches(self, category: str | None, channel: str) -> bool:
        """Whether this override applies to a message of `category` on `channel`."""
        return (self.category is None or self.category == category) and (
            self.channel is None or self.channel == channel
        )


class Texts(_Spec):
    """A plain text in each language."""

    zh: PlainText
    en: PlainText

    def for_lang(self, lang: Lang) -> str:
        """The text for `lang`."""
        return self.zh if lang == "zh" else self.en


class Headers(_Spec):
    """The status answer's first line in each language ({count} open tickets)."""

    zh: HeaderTemplate
    en: HeaderTemplate

    def for_lang(self, lang: Lang) -> str:
        """The template for `lang`."""
        return self.zh if lang == "zh" else self.en


class Lines(_Spec):
    """One open ticket in the status answer ({ticket}, {status}, {updated}, {url})."""

    zh: LineTemplate
    en: LineTemplate

    def for_lang(self, lang: Lang) -> str:
        """The template for `lang`."""
        return self.zh if lang == "zh" else self.en


class StatusReply(_Spec):
    """Answering "where is my ticket": when it applies and how the answer reads."""

    # Substrings of the normalised text (lower case, half-width) that ask for progress.
    triggers: tuple[str, ...] = Field(min_length=1)
    header: Headers
    line: Lines
    # Status ids (received, in_progress, resolved ...) as customers read them.
    statuses: dict[str, Texts] = Field(default_factory=dict)
    # Said when asked with nothing open (the WeChat "my tickets" button); the message
    # answer then falls back to the acknowledgement instead.
    none: Texts | None = None
    max_tickets: int = Field(default=5, ge=1, le=20)


class Notices(_Spec):
    """What a customer is told when their ticket moves ({ticket} {status} {status_url})."""

    zh: NoticeTemplate
    en: NoticeTemplate

    def for_lang(self, lang: Lang) -> str:
        """The template for `lang`."""
        return self.zh if lang == "zh" else self.en


class QuietHours(_Spec):
    """When nobody answers: the note added to every automatic reply in that span."""

    start: time
    end: time
    timezone: str = "Asia/Shanghai"
    text: Texts

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    def covers(self, at: time) -> bool:
        """Whether local time `at` is quiet; a span past midnight (22:00-08:00) wraps."""
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end


class LoopGuard(_Spec):
    """At most `max_replies` automatic replies per customer and channel per window."""

    max_replies: int = Field(default=3, ge=1)
    window_minutes: int = Field(default=10, ge=1, le=1440)


class Templates(_Spec):
    """Reply templates by kind."""

    ack: AckTemplates
    ack_overrides: tuple[AckOverride, ...] = ()


class ReplyRules(_Spec):
    """The validated content of replies.yaml."""

    default_lang: Lang = "zh"
    templates: Templates
    status: StatusReply | None = None
    # Statuses an agent may set that are pushed to the customer's channel, and the words.
    status_notices: dict[Literal["in_progress", "resolved", "closed"], Notices] = Field(
        default_factory=dict
    )
    quiet_hours: QuietHours | None = None
    loop_guard: LoopGuard = LoopGuard()

    def ack_for(self, category: str | None, channel: str) -> AckTemplates:
        """The acknowledgement for a message of `category` on `channel`."""
        for override in self.templates.ack_overrides:
            if override.matches(category, channel):
                return override
        return self.templates.ack
