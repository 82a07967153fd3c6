"""Mail delivered with smtplib to the running service's listener becomes tickets."""

from __future__ import annotations

import asyncio
import io
import smtplib
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from PIL import Image

from intake_hub.storage.models import Attachment, Message
from tests.connectors.email.conftest import (
    SERVED,
    Mailer,
    MakeMailer,
    inbound,
    payload,
    tickets,
)
from tests.web.conftest import AUTH


def plain(subject: str, text: str, sender: str = "amy@example.com", mid: str = "") -> bytes:
    """A simple UTF-8 mail from `sender`, with CRLF line ends as on the wire."""
    msg = EmailMessage()
    msg["From"] = f"Amy <{sender}>"
    msg["To"] = SERVED
    msg["Subject"] = subject
    msg["Message-ID"] = mid or f"<{subject.replace(' ', '-')}-{sender}>"
    msg.set_content(text)
    return msg.as_bytes(policy=SMTP)


async def test_a_gbk_mail_becomes_a_ticket(mailer: Mailer) -> None:
    """A gb2312-labelled GBK mail (喆, 镕) is a ticket with its subject, text and sender."""
    assert await mailer.send(payload("gbk-chinese.eml")) == {}
    await mailer.settle()
    [ticket] = await tickets()
    assert (ticket.channel, ticket.subject, ticket.customer_key) == (
        "email",
        "订单没收到，朱镕喆",
        "wangzhe@example.cn",
    )
    [message] = await inbound(ticket.number)
    assert message.text.startswith("你好，我的订单 20240501123 三天没有物流更新了。")
    assert message.external_id == "email:gbk-1@example.cn"
    shown = await mailer.ticket(ticket.number)
    assert shown["customer"]["name"] == "王喆"


async def test_a_mail_delivered_twice_is_one_message(mailer: Mailer) -> None:
    """The same Message-ID delivered again (an MTA retry) makes no second message."""
    raw = payload("html-only.eml")
    await mailer.send(raw)
    await mailer.send(raw)
    await mailer.settle()
    assert len(await tickets()) == 1
    assert await Message.filter(direction="in").count() == 1


async def test_an_unserved_recipient_is_refused(mailer: Mailer) -> None:
    """RCPT for an address not served is 550; nothing is stored."""
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await mailer.send(plain("hello", "hi"), to=["someone@elsewhere.example"])
    [(code, _)] = refused.value.recipients.values()
    assert code == 550
    await mailer.settle()
    assert await tickets() == []


async def test_a_served_domain_takes_any_address(mailer: Mailer) -> None:
    """An `@domain` pattern serves every address of that domain, case-insensitively."""
    await mailer.send(plain("domain", "hi"), to=["Anyone@Help.Shop.Example"])
    await mailer.settle()
    assert len(await tickets()) == 1


async def test_too_many_recipients_get_452(make_mailer: MakeMailer) -> None:
    """Recipients past the limit are answered 452; the mail still goes to the first ones."""
    mailer = await make_mailer(max_recipients=1)
    refused = await mailer.send(plain("two", "hi"), to=[SERVED, "b@help.shop.example"])
    assert [code for code, _ in refused.values()] == [452]
    await mailer.settle()
    assert len(await tickets()) == 1


async def test_an_oversized_mail_is_refused_552(make_mailer: MakeMailer) -> None:
    """Mail over `max_message_bytes` is refused with 552 (SIZE is advertised)."""
    mailer = await make_mailer(max_message_bytes=2048)
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
        await mailer.send(plain("big", "x" * 4096))
    assert refused.value.smtp_code == 552
    assert refused.value.smtp_error.startswith(b"5.3.4")
    await mailer.settle()
    assert await tickets() == []


async def test_undeclared_oversize_data_is_refused_552(make_mailer: MakeMailer) -> None:
    """A client that declares no SIZE is refused at the end of DATA; nothing is stored."""
    mailer = await make_mailer(max_message_bytes=2048)

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", mailer.port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail("a@example.com")
            smtp.rcpt(SERVED)
            return smtp.data(plain("big", ("x" * 60 + "\n") * 70))

    code, reply = await asyncio.to_thread(send)
    assert (code, reply[:5]) == (552, b"5.3.4")
    await mailer.settle()
    assert await tickets() == []


async def test_an_auto_reply_is_a_ticket_without_an_automatic_answer(mailer: Mailer) -> None:
    """An out-of-office reply becomes a ticket, but gets no auto-reply (a person's mail does)."""
    await mailer.send(payload("auto-reply.eml"))
    await mailer.send(plain("where is my order", "order 123?"))
    await mailer.settle()
    robot, person = await tickets()
    assert robot.customer_key == "carol@example.org"
    assert await Message.filter(ticket=robot, direction="out").count() == 0
    assert await Message.filter(ticket=person, direction="out").count() == 1


async def test_a_photo_is_stored_without_exif_and_listed(mailer: Mailer) -> None:
    """The photo is checked and stored (EXIF gone), the .exe refused with a note, the
    original kept as message/rfc822; the agent API lists them."""
    await mailer.send(payload("photo-attachment.eml"))
    await mailer.settle()
    [ticket] = await tickets()
    shown = await mailer.ticket(ticket.number)
    [message] = [m for m in shown["messages"] if m["direction"] == "in"]
    assert "[attachment setup.exe refused: type]" in message["text"]
    files = {a["name"]: a for a in message["attachments"]}
    assert files["original.eml"]["content_type"] == "message/rfc822"
    photo = files["破损照片.jpg"]
    assert photo["content_type"] == "image/jpeg"
    resp = await mailer.client.get(photo["url"], headers=AUTH)
    assert resp.status == 200
    image = Image.open(io.BytesIO(await resp.read()))
    assert image.size == (8, 8)
    assert 0x010F not in image.getexif()
    assert await Attachment.all().count() == 2


async def test_an_unparsable_mail_is_kept_aside_and_accepted(mailer: Mailer) -> None:
    """A body in an unknown charset is kept under HOME/mail/unparsed (0600) and answered 250."""
    raw = plain("odd", "hi").replace(b'charset="utf-8"', b'charset="x-no-such-charset"')
    assert b"x-no-such-charset" in raw
    assert await mailer.send(raw) == {}
    await mailer.settle()
    assert await tickets() == []
    [kept] = sorted(mailer.unparsed.glob("*.eml"))
    # smtplib sends lines with CRLF and ends the data with one.
    assert (
        kept.read_bytes().replace(b"\r\n", b"\n").rstrip() == raw.replace(b"\r\n", b"\n").rstrip()
    )
    assert kept.stat().st_mode & 0o777 == 0o600


async def test_the_ticket_number_joins_only_from_the_tickets_address(mailer: Mailer) -> None:
    """The number in the subject joins from the ticket's own address; from another, a new one."""
    await mailer.send(plain("broken cup", "it broke"))
    await mailer.settle()
    [first] = await tickets()
    await mailer.send(plain(f"Re: [#{first.number}] broken cup", "photo tomorrow", mid="<a2>"))
    await mailer.send(
        plain(f"Re: [#{first.number}] broken cup", "me too", "eve@evil.example", mid="<e1>")
    )
    await mailer.settle()
    numbers = [t.number for t in await tickets()]
    assert len(numbers) == 2
    assert [m.text for m in await inbound(first.number)] == ["it broke", "photo tomorrow"]
    [other] = [n for n in numbers if n != first.number]
    assert [m.text for m in await inbound(other)] == ["me too"]
