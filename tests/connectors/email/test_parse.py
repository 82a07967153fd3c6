"""Parsing mail: charsets, HTML, quoted history, files and automatic senders."""

from __future__ import annotations

import pytest

from intake_hub.connectors.email.htmltext import html_to_text
from intake_hub.connectors.email.parse import Unparsable, header_text, parse
from intake_hub.connectors.email.quotes import trim
from tests.connectors.email.conftest import payload


def test_gb2312_words_decode_as_gb18030() -> None:
    """A gb2312 encoded word holding GBK-only characters decodes whole."""
    assert header_text("=?gb2312?Q?" + _q("朱镕喆") + "?=") == "朱镕喆"
    assert header_text("=?GBK?Q?" + _q("王喆") + "?= <a@example.cn>") == "王喆 <a@example.cn>"


def _q(text: str) -> str:
    return "".join(f"={b:02X}" for b in text.encode("gb18030"))


def test_mixed_words_keep_their_spaces() -> None:
    """Plain and encoded words in one header join as written."""
    assert header_text("Re: =?utf-8?B?6YCA5qy+?= now") == "Re: 退款 now"


def test_html_becomes_clean_text() -> None:
    """Scripts and styles go, blocks become lines, entities are decoded, quotes marked."""
    html = (
        "<style>x{}</style><p>Hi&nbsp;there</p><script>bad()</script>"
        "<div>a &lt;b&gt;</div><blockquote><p>old</p></blockquote>"
    )
    assert html_to_text(html) == "Hi there\na <b>\n> old"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("new\n\nOn Mon, 6 May 2024, Shop <s@shop.example> wrote:\n> old", "new"),
        ("new\nOn Mon, 6 May 2024, Shop\n<s@shop.example> wrote:\nold", "new"),
        ("新的\n在 2024年5月6日，客服 写道：\n旧的", "新的"),
        ("新的\n------------------ 原始邮件 ------------------\n旧的", "新的"),
        ("new\n-----Original Message-----\nFrom: x\nold", "new"),
        ("新的\n发件人: 客服\n发送时间: 2024年5月6日\n收件人: 我\n旧的", "新的"),
        ("new\n-- \nBob, Shop Inc.", "new"),
        ("answer\n> question\nmore", "answer\nmore"),
        ("> all quote", "> all quote"),
        ("From: me, with love", "From: me, with love"),
    ],
)
def test_history_and_signature_are_trimmed(text: str, kept: str) -> None:
    """What was written this time stays; history and signature go; all-quote stays whole."""
    assert trim(text) == kept


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("auto-reply.eml", "auto-submitted: auto-replied"),
        ("bounce.eml", "daemon sender"),
        ("list-mail.eml", "precedence"),
        ("gbk-chinese.eml", None),
    ],
)
def test_automatic_mail_is_recognised(name: str, why: str | None) -> None:
    """Auto-replies, bounces and list mail are automatic; a person's mail is not."""
    assert parse(payload(name), mail_from="x@example.net").automatic == why


@pytest.mark.parametrize(
    ("headers", "mail_from", "automatic"),
    [
        ("Auto-Submitted: no\n", "a@example.com", False),
        ("Auto-Submitted: auto-generated\n", "a@example.com", True),
        ("", "<>", True),
        ("", "postmaster@example.com", True),
        ("List-Id: <deals.example.com>\n", "a@example.com", True),
        ("Precedence: junk\n", "a@example.com", True),
        ("X-Intake-Hub: 1\n", "a@example.com", True),
    ],
)
def test_loop_signals(headers: str, mail_from: str, automatic: bool) -> None:
    """Each RFC 3834 signal, and our own outbound header, marks mail automatic."""
    raw = f"From: a@example.com\nSubject: s\n{headers}\nbody\n".encode()
    assert (parse(raw, mail_from=mail_from).automatic is not None) is automatic


def test_our_own_message_ids_are_automatic() -> None:
    """Mail carrying a Message-ID of the hub's own domain is its own mail coming back."""
    raw = b"From: a@example.com\nMessage-ID: <t1.x@hub.shop.example>\n\nbody\n"
    assert parse(raw, own_domain="hub.shop.example").automatic == "our own mail"
    assert parse(raw).automatic is None


def test_files_are_named_from_encoded_words() -> None:
    """Attachment names in RFC 2047 words decode; the text part is not a file."""
    mail = parse(payload("photo-attachment.eml"))
    assert [(f.name, f.content_type) for f in mail.files] == [
        ("破损照片.jpg", "image/jpeg"),
        ("setup.exe", "application/x-msdownload"),
    ]


def test_rfc2231_names_decode() -> None:
    """A filename in RFC 2231 form (charset, percent-encoded) decodes."""
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: text/plain\n\nsee file\n--b\nContent-Type: application/pdf\n"
        b"Content-Disposition: attachment; filename*=utf-8''%E5%8F%91%E7%A5%A8.pdf\n\n"
        b"%PDF-1.4\n--b--\n"
    )
    mail = parse(raw)
    assert mail.text == "see file"
    assert [f.name for f in mail.files] == ["发票.pdf"]


def test_a_mail_without_message_id_gets_one_from_its_bytes() -> None:
    """The same bytes give the same id (so a redelivery dedupes); other bytes another."""
    raw = b"From: a@example.com\n\nbody\n"
    assert parse(raw).message_id == parse(raw).message_id != parse(raw + b"x").message_id


def test_unknown_charsets_and_senderless_mail_are_unparsable() -> None:
    """What cannot be read faithfully raises Unparsable (kept aside by the connector)."""
    with pytest.raises(Unparsable):
        parse(b"From: a@example.com\nContent-Type: text/plain; charset=x-nope\n\nhi\n")
    with pytest.raises(Unparsable):
        parse(b"Subject: nobody\n\nhi\n")
