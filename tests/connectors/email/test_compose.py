"""The hub's own mail as composed: ids only we make, subjects with the number once, safe HTML."""

from __future__ import annotations

from datetime import UTC, datetime

from intake_hub.connectors.email.compose import (
    Outgoing,
    compose,
    html_of,
    is_ours,
    new_message_id,
    subject_for,
)
from intake_hub.connectors.email.parse import parse

NUMBER = "0K3M7Q2X9HT"


def test_our_message_ids_come_back_as_our_own_mail() -> None:
    """Mail carrying an id the hub made is its own mail; a colleague's id on the domain is not."""
    ours = new_message_id(NUMBER, "shop.example")
    assert is_ours(ours, "shop.example")
    raw = f"From: a@example.com\nMessage-ID: <{ours}>\n\nbody\n".encode()
    assert parse(raw, own_domain="shop.example").automatic == "our own mail"
    colleague = b"From: b@shop.example\nMessage-ID: <CAF1x2@shop.example>\n\nbody\n"
    assert parse(colleague, own_domain="shop.example").automatic is None


def test_message_ids_are_unguessable() -> None:
    """Two ids for the same ticket share nothing but the number and domain."""
    first, second = new_message_id(NUMBER, "d.example"), new_message_id(NUMBER, "d.example")
    assert first != second and first.split(".")[0] != second.split(".")[0]


def test_subjects_carry_the_number_once_and_lose_reply_prefixes() -> None:
    """`回复: Re:` prefixes go; a subject already naming the ticket is not given it twice."""
    assert subject_for(NUMBER, "回复: Re: 快递没到", "") == "Re: 快递没到 [#0K3M-7Q2X-9HT]"
    assert subject_for(NUMBER, "Re: 快递没到 [#0K3M-7Q2X-9HT]", "") == (
        "Re: 快递没到 [#0K3M-7Q2X-9HT]"
    )
    assert subject_for(NUMBER, None, "鞋子小了，想换") == "Re: 鞋子小了，想换 [#0K3M-7Q2X-9HT]"


def test_html_escapes_what_the_text_says() -> None:
    """Markup in an agent's words is shown as text; links become links."""
    page = html_of('<script>x</script>\n看这里 https://shop.example/t?a=1&b="2"')
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<a href="https://shop.example/t?a=1&amp;b=' in page


def test_composed_mail_is_utf8_and_marked_automatic() -> None:
    """Chinese survives the wire; an automatic mail says so, a person's reply does not."""
    out = Outgoing(
        to="王喆 <wz@example.cn>",
        sender="客服 <service@shop.example>",
        subject="Re: 订单 [#0K3M-7Q2X-9HT]",
        text="您好，已发货。",
        message_id=new_message_id(NUMBER, "shop.example"),
        number=NUMBER,
        at=datetime(2026, 12, 3, tzinfo=UTC),
        in_reply_to="q@example.cn",
        references=("a@x", "q@example.cn"),
        auto_submitted="auto-replied",
    )
    back = parse(compose(out).as_bytes(), mail_from="service@shop.example")
    assert (back.subject, back.text) == ("Re: 订单 [#0K3M-7Q2X-9HT]", "您好，已发货。")
    assert back.references[0] == "q@example.cn"
    assert back.automatic is not None
    person = compose(Outgoing(**{**out.__dict__, "auto_submitted": None}))
    assert person["Auto-Submitted"] is None
