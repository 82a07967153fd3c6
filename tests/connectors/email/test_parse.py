"""Parsing mail: charsets, HTML, quoted history, files, automatic senders, threads, bounces."""

from __future__ import annotations

import pytest

from intake_hub.connectors.email.bounces import Bounce
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
    ("text", "kept"),
    [
        ("好的\n\n发自我的iPhone", "好的"),
        ("好的\n发自我的华为手机", "好的"),
        ("好的\n\n从我的 iPhone 发送", "好的"),
        ("好的\n来自网易邮箱大师", "好的"),
        ("ok\n\nSent from my iPhone", "ok"),
        ("ok\nGet Outlook for Android", "ok"),
        ("订单 123\n\n发自我的 iPad\n\n在 2024年5月6日，客服 写道：\n> 旧", "订单 123"),
        ("Sent from my iPhone\n真正的问题在这里", "Sent from my iPhone\n真正的问题在这里"),
        ("我想问来自我的手机订单为什么没发货", "我想问来自我的手机订单为什么没发货"),
    ],
)
def test_the_mail_apps_own_last_line_goes(text: str, kept: str) -> None:
    """The mail app's own last line (Sent from my iPhone, 发自我的华为手机) goes; words stay."""
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
    mid = b"<ih-0123456789abcdef01234567.0K3M7Q2X9HT@hub.shop.example>"
    raw = b"From: a@example.com\nMessage-ID: " + mid + b"\n\nbody\n"
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


HUB1 = "ih-3f9a1c27e5b04d8e9a6c1f22.0K3M7Q2X9HT@shop.example"
HUB2 = "ih-8b2e4d6f0a1c3e5f7a9b1c3d.1B7R4W8N2DK@shop.example"
HUB3 = "ih-c41d9e0f2a3b4c5d6e7f8091.2C8S5X9P3EM@shop.example"


@pytest.mark.parametrize(
    ("name", "references"),
    [
        ("reply-quoted.eml", ("hub-1@shop.example",)),
        ("outlook-reply-chinese.eml", (HUB1,)),
        ("foxmail-reply.eml", (HUB1,)),
        (
            "outlook-reply.eml",
            (
                HUB1,
                "PAXPR03MB8123A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8"
                "@PAXPR03MB8123.eurprd03.prod.outlook.com",
                HUB2,
                "CAF4kd9s7Qx=first@mail.gmail.com",
            ),
        ),
        ("gbk-chinese.eml", ()),
        ("forwarded.eml", ()),
    ],
)
def test_replies_name_the_mails_they_answer(name: str, references: tuple[str, ...]) -> None:
    """In-Reply-To comes first, then References from the parent back, each id once."""
    assert parse(payload(name)).references == references


def test_references_are_read_past_folding_comments_and_junk() -> None:
    """Folded lines, comments, quoted text and junk between ids leave only the ids."""
    raw = (
        b"From: a@example.com\n"
        b"In-Reply-To: <p@x.example> (Bob's mail <not@an.id>)\n"
        b'References: "your message of <no@no>" <a@x.example> junk,\n'
        b"\t<b@x.example>\n <broken\n id@x.example> <p@x.example> <> <c@x.example\n"
        b"\nbody\n"
    )
    assert parse(raw).references == ("p@x.example", "b@x.example", "a@x.example")


def test_references_are_capped_at_fifty() -> None:
    """A long thread gives its 50 nearest ancestors, the parent first."""
    chain = " ".join(f"<m{i}@x.example>" for i in range(80))
    raw = f"From: a@example.com\nReferences: {chain}\n\nbody\n".encode()
    found = parse(raw).references
    assert len(found) == 50
    assert found[0] == "m79@x.example" and found[-1] == "m30@x.example"


@pytest.mark.parametrize(
    ("name", "bounce"),
    [
        (
            "bounce.eml",
            Bounce(
                original_id="ih-5e7d2c4b9a1f3e6d8c0b2a47.0K3M7Q2X9HT@shop.example",
                recipients=("gone@example.net",),
                permanent=True,
                reason="5.1.1",
            ),
        ),
        (
            "dsn-headers.eml",
            Bounce(
                original_id=HUB3,
                recipients=("old.buyer@contoso.example",),
                permanent=True,
                reason="5.1.10 smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
                "Recipient not found by SMTP address lookup",
            ),
        ),
        ("dsn-delayed.eml", Bounce(original_id=HUB2, recipients=(), permanent=False, reason="")),
    ],
)
def test_bounces_name_the_mail_and_addresses_that_failed(name: str, bounce: Bounce) -> None:
    """A DSN names our returned mail, the failed addresses, and whether to give up on them."""
    mail = parse(payload(name), mail_from="")
    assert mail.bounce == bounce
    assert mail.automatic is not None


@pytest.mark.parametrize(
    "name",
    [
        "auto-reply.eml",
        "big5-chinese.eml",
        "forwarded.eml",
        "gbk-chinese.eml",
        "list-mail.eml",
        "outlook-reply.eml",
        "photo-attachment.eml",
        "reply-quoted.eml",
    ],
)
def test_ordinary_mail_is_no_bounce(name: str) -> None:
    """Mail that is no delivery status notification has no bounce."""
    assert parse(payload(name)).bounce is None


def _report(*parts: str, kind: str = "delivery-status") -> bytes:
    body = "".join(f"--r\n{p}\n" for p in parts)
    return (
        "From: MAILER-DAEMON@mx.example.net\nMessage-ID: <r@mx.example.net>\n"
        f"Content-Type: multipart/report; report-type={kind}; boundary=r\n\n{body}--r--\n"
    ).encode()


_STATUS = "Content-Type: message/delivery-status\n\n"
_FAILED = "Final-Recipient: rfc822; A@x.example\nAction: failed\nStatus: 5.2.2\n"


@pytest.mark.parametrize(
    ("raw", "bounce"),
    [
        (_report(_STATUS + "garbage\n\x00\n"), Bounce(None, (), False, "")),
        (_report(), Bounce(None, (), False, "")),
        (
            _report(_STATUS + "Reporting-MTA: dns; mx\n\n" + _FAILED),
            Bounce(None, ("a@x.example",), True, "5.2.2"),
        ),
        (
            _report(
                "Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
                "RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGJAeC5leGFtcGxlDQpBY3Rpb246IGZhaWxlZA0KRGlh"
                "Z25vc3RpYy1Db2RlOiBzbXRwOyA1NTAgbm8gc3VjaCB1c2VyDQo=\n",
                "Content-Type: text/rfc822-headers\n\nSubject: x\n",
            ),
            Bounce(None, ("b@x.example",), True, "5.0.0 smtp; 550 no such user"),
        ),
        (
            _report("Content-Type: message/rfc822\n\nnot a mail at all", _STATUS + _FAILED),
            Bounce(None, ("a@x.example",), True, "5.2.2"),
        ),
    ],
)
def test_malformed_reports_give_what_can_be_read(raw: bytes, bounce: Bounce) -> None:
    """Garbage, missing parts or an encoded status part never raise; what is there is read."""
    assert parse(raw).bounce == bounce


def test_read_receipts_are_no_bounce() -> None:
    """A disposition notification (read receipt) is a report but no bounce."""
    raw = _report(
        "Content-Type: message/disposition-notification\n\nDisposition: x\n",
        kind="disposition-notification",
    )
    assert parse(raw).bounce is None


@pytest.mark.parametrize(
    ("subject", "text", "kept"),
    [
        (
            "Fwd: order",
            "see below\n\n---------- Forwarded message ---------\nFrom: Shop <o@s.example>\n"
            "Date: Mon, 6 May 2024\nSubject: Order A-1\nTo: <me@x.example>\n\n\n"
            "Order A-1: one vase\n\n-- \nShop",
            "see below\n\n---------- Forwarded message ---------\nFrom: Shop <o@s.example>\n"
            "Date: Mon, 6 May 2024\nSubject: Order A-1\nTo: <me@x.example>\n\nOrder A-1: one vase",
        ),
        (
            "FW: order",
            "-----Original Message-----\nFrom: Shop <o@s.example>\nSent: Monday\nTo: me\n"
            "Subject: Order A-1\n\nOrder A-1: one vase\n\nOn Sun, x <y@z> wrote:\n> older",
            "-----Original Message-----\nFrom: Shop <o@s.example>\nSent: Monday\nTo: me\n"
            "Subject: Order A-1\n\nOrder A-1: one vase",
        ),
        (
            "转发：订单",
            "请看\n-- \n王喆\n\n------------------ 原始邮件 ------------------\n"
            "发件人: 商城<o@s.example>;\n发送时间: 2024年5月6日\n\n"
            "主题: 订单 A-1\n\n订单 A-1 已发货",
            "请看\n\n------------------ 原始邮件 ------------------\n"
            "发件人: 商城<o@s.example>;\n发送时间: 2024年5月6日\n主题: 订单 A-1\n\n订单 A-1 已发货",
        ),
        (
            "Re: order",
            "thanks\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\n\nOrder A-1",
            "thanks",
        ),
    ],
)
def test_forwarded_mail_is_kept(subject: str, text: str, kept: str) -> None:
    """A forwarded mail is what the customer sends: kept, trimmed of its own history."""
    head = f"From: a@example.com\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n"
    raw = f"{head}\n{text}\n"
    assert parse(raw.encode()).text == kept


def test_foxmail_nbsp_marker_is_history() -> None:
    """Foxmail's plain text writes `&nbsp;` around 原始邮件: still cut as history."""
    text = "好的\n\n------------------&nbsp;原始邮件&nbsp;------------------\n发件人: x\n旧的"
    assert trim(text) == "好的"
