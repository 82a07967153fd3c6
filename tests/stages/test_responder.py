"""The respond stage: acknowledgements naming the ticket and its status link."""

from __future__ import annotations

from collections.abc import Callable

from intake_hub.access import Links
from intake_hub.envelope import Envelope
from intake_hub.rules import RuleSet
from intake_hub.rules.replies import AckTemplates, ReplyRules, Templates
from intake_hub.stages.responder import language, respond
from intake_hub.ticketno import pretty

MakeEnvelope = Callable[..., Envelope]
LINKS = Links("https://help.example.com/", b"test-secret")


async def test_chinese_message_gets_chinese_ack(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A customer writing Chinese is answered in Chinese with the number and status link."""
    env = make_env("尺码不对，想换大一码")
    out = await respond(env, ruleset.replies, LINKS)
    assert out.reply is not None
    assert (out.reply.kind, out.reply.lang) == ("ack", "zh")
    assert pretty(env.ticket) in out.reply.text
    assert LINKS.status_url(env.ticket) in out.reply.text
    assert "工单号" in out.reply.text


async def test_english_message_gets_english_ack(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A customer writing English is answered in English with the number and status link."""
    env = make_env("where is my package?")
    out = await respond(env, ruleset.replies, LINKS)
    assert out.reply is not None
    assert out.reply.lang == "en"
    assert f"ticket number is {pretty(env.ticket)}" in out.reply.text
    assert "https://help.example.com/tickets/" in out.reply.text


def test_one_chinese_character_means_chinese() -> None:
    """Chinese with an English product name gets Chinese; full-width English gets English."""
    assert language("iPhone 15 Pro 屏幕 broken") == "zh"
    assert language("ＲＥＦＵＮＤ") == "en"


async def test_no_words_uses_default_language(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A message of only digits or emoji is answered in the configured default language."""
    out = await respond(make_env("4102938475610 🙏"), ruleset.replies, LINKS)
    assert out.reply is not None
    assert out.reply.lang == ruleset.replies.default_lang


async def test_template_braces_and_copy(make_env: MakeEnvelope) -> None:
    """Operators can write literal braces, and the incoming envelope is left unchanged."""
    rules = ReplyRules(
        templates=Templates(
            ack=AckTemplates(
                zh="{{工单}} {ticket} {status_url}", en="{{ticket}} {ticket} -> {status_url}"
            )
        )
    )
    env = make_env("hello")
    out = await respond(env, rules, LINKS)
    assert out.reply is not None
    assert out.reply.text == (f"{{ticket}} {pretty(env.ticket)} -> {LINKS.status_url(env.ticket)}")
    assert env.reply is None
