"""The respond stage: an acknowledgement naming the ticket number and the status link."""

from __future__ import annotations

from intake_hub.access import Links
from intake_hub.envelope import Envelope, Reply
from intake_hub.rules.replies import Lang, ReplyRules
from intake_hub.rules.text import has_cjk, has_latin, normalize
from intake_hub.ticketno import pretty


def language(text: str, default: Lang = "zh") -> Lang:
    """The reply language for a message: Chinese characters -> zh, else Latin letters -> en."""
    if has_cjk(text):
        return "zh"
    # Full-width letters (ＲＥＦＵＮＤ) are still English.
    if has_latin(normalize(text)):
        return "en"
    return default


async def respond(env: Envelope, rules: ReplyRules, links: Links) -> Envelope:
    """Set `reply` to the acknowledgement in the customer's language."""
    lang = language(f"{env.subject or ''}\n{env.text}", rules.default_lang)
    template = rules.templates.ack.for_lang(lang)
    # Placeholders were checked at load: only {ticket} and {status_url}, bare.
    text = template.format(ticket=pretty(env.ticket), status_url=links.status_url(env.ticket))
    return env.model_copy(update={"reply": Reply(kind="ack", text=text, lang=lang)})
