"""The respond stage: exactly one automatic reply per message, or none, and why.

In order: a "where is my ticket" question is answered with the customer's open tickets
(kind `status`); else a knowledge-base entry above the threshold answers (kind `faq`,
with a "did this answer your question?" line); else the acknowledgement for the category
and channel (kind `ack`). Quiet hours add a note. Then the loop guards, kept here for
every channel, may turn the reply into `none`: never to an automatic sender, and at most
N automatic replies per customer and channel per window, counted atomically by the store.

The stage stays pure: the ticket lookup and the reply counter are injected protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from intake_hub.access import Links
from intake_hub.envelope import Envelope, Reply
from intake_hub.rules.faq import FaqIndex
from intake_hub.rules.replies import Lang, ReplyRules
from intake_hub.rules.text import has_cjk, has_latin, normalize
from intake_hub.status import OpenTicket
from intake_hub.ticketno import pretty

STATUS_ZONE = "Asia/Shanghai"


class TicketLookup(Protocol):
    """The customer's open tickets on one channel, most recently updated first."""

    async def open_tickets(self, channel: str, customer_key: str) -> Sequence[OpenTicket]:
        """Open tickets of the customer known as `customer_key` on `channel`."""
        ...


class ReplyGuard(Protocol):
    """The per-customer cap on automatic replies, counted atomically by its implementation."""

    async def take(
        self, channel: str, customer_key: str, *, limit: int, window_minutes: int, now: datetime
    ) -> bool:
        """Count one automatic reply; False when that would exceed `limit` in the window."""
        ...


def language(text: str, default: Lang = "zh") -> Lang:
    """The reply language for a message: Chinese characters -> zh, else Latin letters -> en."""
    if has_cjk(text):
        return "zh"
    # Full-width letters (ＲＥＦＵＮＤ) are still English.
    if has_latin(normalize(text)):
        return "en"
    return default


def asks_status(text: str, rules: ReplyRules) -> bool:
    """Whether the message asks where its ticket stands ("进度", "where is my ticket")."""
    if rules.status is None:
        return False
    folded = normalize(text)
    return any(normalize(t) in folded for t in rules.status.triggers)


def _shown_number(env: Envelope) -> str:
    """The ticket the customer is on: the one they proved for a reply, else their new one."""
    return env.proof.ticket if env.proof is not None else env.ticket


def _ack(env: Envelope, rules: ReplyRules, links: Links, lang: Lang) -> Reply:
    category = env.labels.category if env.labels is not None else None
    template = rules.ack_for(category, env.channel).for_lang(lang)
    # Placeholders were checked at load: only {ticket} and {status_url}, bare.
    number = _shown_number(env)
    text = template.format(ticket=pretty(number), status_url=links.status_url(number))
    return Reply(kind="ack", text=text, lang=lang)


def _status(
    tickets: Sequence[OpenTicket], rules: ReplyRules, links: Links, lang: Lang
) -> Reply | None:
    if not tickets:
        return None
    text = open_tickets_text(tickets, rules, links, lang)
    return Reply(kind="status", text=text, lang=lang) if text else None


def open_tickets_text(
    tickets: Sequence[OpenTicket], rules: ReplyRules, links: Links, lang: Lang
) -> str | None:
    """The customer's open tickets (newest first) as the status answer words them.

    With none open, the `status.none` text; None when replies.yaml has no status answer.
    """
    spec = rules.status
    if spec is None:
        return None
    if not tickets:
        return spec.none.for_lang(lang) if spec.none else None
    zone = ZoneInfo(rules.quiet_hours.timezone if rules.quiet_hours else STATUS_ZONE)
    lines = [spec.header.for_lang(lang).format(count=len(tickets))]
    for t in tickets[: spec.max_tickets]:
        shown = spec.statuses.get(t.status)
        lines.append(
            spec.line.for_lang(lang).format(
                ticket=pretty(t.number),
                status=shown.for_lang(lang) if shown else t.status,
                updated=t.updated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                url=links.status_url(t.number),
            )
        )
    return "\n".join(lines)


def status_notice(
    rules: ReplyRules, links: Links, number: str, status: str, first_text: str
) -> str | None:
    """The notice telling the customer their ticket moved to `status`, in their language."""
    template = rules.status_notices.get(status)  # type: ignore[call-overload]
    if template is None:
        return None
    lang = language(first_text, rules.default_lang)
    shown = rules.status.statuses.get(status) if rules.status else None
    return str(template.for_lang(lang)).format(
        ticket=pretty(number),
        status=shown.for_lang(lang) if shown else status,
        status_url=links.status_url(number),
    )


def _quiet(rules: ReplyRules, now: datetime, lang: Lang) -> str | None:
    quiet = rules.quiet_hours
    if quiet is None:
        return None
    local = now.astimezone(ZoneInfo(quiet.timezone)).time()
    return quiet.text.for_lang(lang) if quiet.covers(local) else None


async def _loop_guard(
    env: Envelope, rules: ReplyRules, guard: ReplyGuard | None, now: datetime
) -> str | None:
    """Why no automatic reply may go out for this message, or None when one may."""
    if env.automatic:
        return "the sender is automatic (auto-reply, bounce or list mail)"
    if guard is None:
        return None
    cap = rules.loop_guard
    allowed = await guard.take(
        env.channel,
        env.customer.key,
        limit=cap.max_replies,
        window_minutes=cap.window_minutes,
        now=now,
    )
    if not allowed:
        return f"more than {cap.max_replies} automatic replies in {cap.window_minutes} minutes"
    return None


async def respond(
    env: Envelope,
    rules: ReplyRules,
    links: Links,
    *,
    faq: FaqIndex | None = None,
    tickets: TicketLookup | None = None,
    guard: ReplyGuard | None = None,
    now: datetime | None = None,
) -> Envelope:
    """Set `reply`: one status, FAQ or acknowledgement reply, or `none` with the reason.

    A proven follow-up (the status page's reply box) gets an FAQ answer or nothing.
    """
    now = now or datetime.now(UTC)
    text = f"{env.subject or ''}\n{env.text}"
    lang = language(text, rules.default_lang)
    reply: Reply | None = None
    # Only a verified customer is shown their tickets: a claimed contact could be anyone's.
    verified = env.customer.identity == "verified"
    if tickets is not None and verified and asks_status(text, rules):
        found = await tickets.open_tickets(env.channel, env.customer.key)
        # The message itself is not stored yet; a follow-up may already name its ticket.
        reply = _status([t for t in found if t.number != env.ticket], rules, links, lang)
    if reply is None and faq is not None:
        match = faq.match(env.text)
        if match is not None:
            number = _shown_number(env)
            text = faq.answer(match, lang, pretty(number), links.status_url(number))
            reply = Reply(kind="faq", text=text, lang=lang)
    if reply is None and env.proof is not None:
        # The customer is writing on a ticket they hold (its status page): acknowledging
        # it with the number again would only repeat what the page shows.
        why = "no automatic reply: a follow-up on the ticket the sender proved they hold"
        return env.model_copy(update={"reply": Reply(kind="none", text=why, lang=lang)})
    if reply is None:
        reply = _ack(env, rules, links, lang)
    # The message's own time decides, so a redelivery later gives the same reply.
    note = _quiet(rules, env.received_at, lang)
    if note is not None:
        reply = reply.model_copy(update={"text": f"{reply.text}\n{note}"})
    blocked = await _loop_guard(env, rules, guard, now)
    if blocked is not None:
        # Never sent (kind none); the text only explains the silence to agents and explain.
        reply = Reply(kind="none", text=f"no automatic reply: {blocked}", lang=lang)
    return env.model_copy(update={"reply": reply})
