"""The notice a customer gets when an agent moves their ticket, from rules/replies.yaml."""

from __future__ import annotations

from intake_hub.access import Links
from intake_hub.rules import RuleSet
from intake_hub.stages.responder import status_notice
from intake_hub.ticketno import pretty
from tests.stages.conftest import TICKET

LINKS = Links("https://help.example.com", b"k" * 32)


def test_resolved_notice_speaks_the_customers_language(ruleset: RuleSet) -> None:
    """A customer who wrote in English is told in English, with the number and the link."""
    text = status_notice(ruleset.replies, LINKS, TICKET, "resolved", "Where is my parcel??")
    assert text is not None
    assert pretty(TICKET) in text and "resolved" in text
    assert LINKS.status_url(TICKET) in text
    zh = status_notice(ruleset.replies, LINKS, TICKET, "resolved", "快递怎么还没到")
    assert zh is not None and "已解决" in zh and pretty(TICKET) in zh


def test_statuses_without_words_send_nothing(ruleset: RuleSet) -> None:
    """The shipped pack says nothing on `closed` or `in_progress`: no notice is made."""
    for status in ("closed", "in_progress"):
        assert status_notice(ruleset.replies, LINKS, TICKET, status, "退货") is None
