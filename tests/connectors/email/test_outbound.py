"""Auto-replies, agents' replies and notices leave by mail through a real relay, once each."""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from intake_hub.app import OUTBOUND
from intake_hub.connectors.email import outbound, outbox
from intake_hub.storage import outboxes
from intake_hub.storage.models import Event, MailOutbound, Message
from intake_hub.ticketno import pretty
from intake_hub.tickets.outbound import Delivery
from tests.connectors.email.conftest import Mailer, MakeMailer, ended, inbound, tickets
from tests.connectors.email.relay import Relay, start_relay
from tests.connectors.email.test_smtp import plain
from tests.web.conftest import AUTH


def text_of(msg: EmailMessage) -> str:
    """The plain-text part of a mail the hub sent."""
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def ids(value: object) -> list[str]:
    """The Message-IDs in a header, without brackets."""
    return [i.strip("<>") for i in str(value or "").split()]


async def test_a_new_mail_is_answered_by_a_threaded_auto_reply(
    sending: Mailer, relay: Relay
) -> None:
    """The acknowledgement goes to the sender, in their thread, marked automatic, in UTF-8."""
    await sending.send(
        plain("快递还没到", "订单 4102938475610 的快递还没到", mid="<q1@example.com>")
    )
    [got] = await relay.wait(1)
    [ticket] = await tickets()
    msg = got.message
    assert got.rcpt_tos == ["amy@example.com"]
    assert got.mail_from == "service@shop.example"
    assert email.utils.parseaddr(str(msg["From"])) == ("小店客服", "service@shop.example")
    assert msg["Subject"] == f"Re: 快递还没到 [#{pretty(ticket.number)}]"
    assert msg["In-Reply-To"] == "<q1@example.com>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert ticket.number in text_of(msg)
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and "<a href=" in str(html.get_content())
    row = await ended()
    assert row.key == f"reply:{(await inbound(ticket.number))[0].id}"
    assert msg["Message-ID"] == f"<{row.message_id}>"


async def test_a_reply_to_our_mail_joins_its_ticket_from_any_address(
    sending: Mailer, relay: Relay
) -> None:
    """Quoting our Message-ID joins the ticket (and gets no second acknowledgement)."""
    await sending.send(plain("退货", "我想退货", mid="<r1@example.com>"))
    [ack] = await relay.wait(1)
    ours = ack.message["Message-ID"]
    answer = plain("换个标题", "地址是北京市朝阳区", sender="amy.work@corp.example", mid="<r2@x>")
    answer = answer.replace(b"\r\n\r\n", f"\r\nIn-Reply-To: {ours}\r\n\r\n".encode(), 1)
    await sending.send(answer, mail_from="amy.work@corp.example")
    await sending.settle()
    [ticket] = await tickets()
    assert [m.text for m in await inbound(ticket.number)] == ["我想退货", "地址是北京市朝阳区"]
    assert len(relay.mails) == 1


async def test_a_forged_message_id_starts_a_new_ticket(sending: Mailer, relay: Relay) -> None:
    """A stranger quoting a made-up id of our form, or the victim's number, joins nothing."""
    await sending.send(plain("发票", "请开发票", mid="<v1@example.com>"))
    await relay.wait(1)
    [victim] = await tickets()
    forged = plain(f"Re: 发票 [#{victim.number}]", "把发票寄给我", sender="eve@evil.example")
    fake_id = f"<ih-{'0' * 24}.{victim.number}@shop.example>"
    forged = forged.replace(b"\r\n\r\n", f"\r\nIn-Reply-To: {fake_id}\r\n\r\n".encode(), 1)
    await sending.send(forged, mail_from="eve@evil.example")
    await sending.settle()
    assert len(await tickets()) == 2
    assert [m.text for m in await inbound(victim.number)] == ["请开发票"]


async def test_an_agents_reply_is_mailed_in_the_thread(sending: Mailer, relay: Relay) -> None:
    """The agent's words reach the customer, referencing their mail and our auto-reply."""
    await sending.send(plain("尺码", "鞋子小了", mid="<s1@example.com>"))
    [ack] = await relay.wait(1)
    [ticket] = await tickets()
    resp = await sending.client.post(
        f"/api/v1/tickets/{ticket.number}/replies", json={"text": "已为您换成大一码"}, headers=AUTH
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["delivery"] == "email"
    [_, reply] = await relay.wait(2)
    assert text_of(reply.message).strip() == "已为您换成大一码"
    await ended(key__startswith="agent:")
    shown = (await sending.ticket(ticket.number))["messages"][-1]
    assert (shown["text"], shown["delivery"]["status"]) == ("已为您换成大一码", "sent")
    assert reply.message["Auto-Submitted"] is None
    assert reply.message["In-Reply-To"] == "<s1@example.com>"
    assert set(ids(reply.message["References"])) == {
        "s1@example.com",
        ids(ack.message["Message-ID"])[0],
    }


async def test_a_status_notice_is_marked_auto_generated(sending: Mailer, relay: Relay) -> None:
    """Resolving the ticket mails the customer a notice no robot should answer."""
    await sending.send(plain("坏了", "收到的杯子碎了", mid="<n1@example.com>"))
    await relay.wait(1)
    [ticket] = await tickets()
    resp = await sending.client.post(
        f"/api/v1/tickets/{ticket.number}/status", json={"status": "resolved"}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    [_, notice] = await relay.wait(2)
    assert notice.message["Auto-Submitted"] == "auto-generated"


async def test_transient_refusals_are_retried_and_sent_once(sending: Mailer, relay: Relay) -> None:
    """Two 451s from the relay delay the mail; it then arrives exactly once."""
    relay.answers += ["451 4.3.0 Try later", "451 4.3.0 Try later"]
    await sending.send(plain("物流", "到哪了", mid="<t1@example.com>"))
    [got] = await relay.wait(1)
    row = await ended()
    assert row.attempts == 3
    assert got.message["Message-ID"] == f"<{row.message_id}>"
    await sending.connector.sender.run_once()  # type: ignore[union-attr]
    assert len(relay.mails) == 1


async def test_a_refused_recipient_is_recorded_not_retried(sending: Mailer, relay: Relay) -> None:
    """A 550 ends the mail as failed, with an event on the ticket agents can see."""
    relay.answers.append("550 5.1.1 No such user")
    await sending.send(plain("发票", "开票", mid="<f1@example.com>"))
    await sending.settle()
    [ticket] = await tickets()
    row = await ended(outboxes.FAILED)
    assert row.reason is not None and row.reason.startswith("550")
    assert await Event.filter(ticket_id=ticket.id, kind="mail_not_sent").exists()
    assert relay.mails == []
    # The agent sees the acknowledgement never arrived, and the relay's words.
    [_, ack] = (await sending.ticket(ticket.number))["messages"]
    assert ack["delivery"]["channel"] == "email"
    assert (ack["delivery"]["status"], ack["delivery"]["reason"]) == ("failed", row.reason)


async def test_a_mail_delivered_twice_is_answered_once(sending: Mailer, relay: Relay) -> None:
    """An MTA's second delivery of the same mail sends no second acknowledgement."""
    raw = plain("重复", "同一封信", mid="<d1@example.com>")
    await sending.send(raw)
    await relay.wait(1)
    await sending.send(raw)
    await sending.settle()
    await sending.connector.sender.run_once()  # type: ignore[union-attr]
    assert len(relay.mails) == 1
    assert await MailOutbound.all().count() == 1


async def test_an_interrupted_send_goes_again_with_the_same_message_id(
    sending: Mailer, relay: Relay
) -> None:
    """A send left `sending` by a dead worker is sent again, as the same mail."""
    sender = sending.connector.sender
    assert sender is not None
    await sender.stop()
    await sending.send(plain("中断", "发到一半", mid="<i1@example.com>"))
    await sending.settle()
    now = datetime.now(UTC)
    await outbox.resolve_waiting("email", now)
    [job] = await outbox.claim_due("email", now)  # claimed, then the worker "dies"
    await MailOutbound.filter(id=job.id).update(updated_at=now - timedelta(hours=1))
    assert await sender.run_once() == 1
    [got] = relay.mails
    assert got.message["Message-ID"] == f"<{job.message_id}>"


async def test_no_relay_means_the_status_page_only(mailer: Mailer) -> None:
    """Without a relay, agents' replies are not mailed and nothing is queued."""
    await mailer.send(plain("问", "在吗", mid="<p1@example.com>"))
    await mailer.settle()
    [ticket] = await tickets()
    resp = await mailer.client.post(
        f"/api/v1/tickets/{ticket.number}/replies", json={"text": "在的"}, headers=AUTH
    )
    assert (await resp.json())["delivery"] == "status_page"
    assert await MailOutbound.all().count() == 0
    assert await Message.filter(direction="out", text="在的").exists()


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, trusted as the system's CAs would be."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_starttls_and_login_to_the_relay(
    make_mailer: MakeMailer, certificate: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay that demands STARTTLS and a login gets both; a wrong password is retried."""
    monkeypatch.setattr(outbound, "BACKOFF_S", (0.2, 0.4))
    relay = await start_relay(tls=certificate, login=("hub", "s3cret"))
    try:
        served = await make_mailer(
            relay=relay.address,
            relay_security="starttls",
            relay_username="hub",
            relay_password="wrong",
            mail_from="service@shop.example",
            outbound_poll_s=0.1,
        )
        await served.send(plain("登录", "走加密通道", mid="<tls1@example.com>"))
        row = await ended(outboxes.PENDING)
        for _ in range(100):
            await row.refresh_from_db()
            if row.attempts >= 2:
                break
            await asyncio.sleep(0.05)
        assert row.attempts >= 2 and row.reason is not None and "535" in row.reason
        assert relay.mails == []
        served.connector.sender.config = served.connector.config.model_copy(  # type: ignore[union-attr]
            update={"relay_password": "s3cret"}
        )
        [got] = await relay.wait(1)
        assert got.rcpt_tos == ["amy@example.com"]
        assert (await ended()).status == outboxes.SENT
    finally:
        assert relay.server is not None
        relay.server.close()


async def test_required_starttls_never_sends_in_clear(
    make_mailer: MakeMailer, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay that offers no STARTTLS gets nothing when TLS is required; the mail waits."""
    monkeypatch.setattr(outbound, "BACKOFF_S", (0.2, 0.4))
    served = await make_mailer(
        relay=relay.address,
        relay_security="starttls",
        mail_from="service@shop.example",
        outbound_poll_s=0.1,
    )
    await served.send(plain("明文", "不许明文发送", mid="<clear1@example.com>"))
    row = await ended(outboxes.PENDING)
    assert row.reason is not None and "STARTTLS" in row.reason
    await asyncio.sleep(0.5)
    assert relay.mails == []


async def test_an_address_no_mail_can_carry_fails_once(sending: Mailer, relay: Relay) -> None:
    """A reply to a malformed address ends failed at once, and the next mail still goes."""
    now = datetime.now(UTC)
    port = sending.client.app[OUTBOUND]["email/email"]
    for key, to in (("agent:bad", "a b@x.com"), ("agent:good", "amy@example.com")):
        delivery = Delivery(key, uuid.uuid4(), "0K3M7Q2X9HT", "email/email", to, "您好", now, now)
        async with in_transaction():
            await port.enqueue(delivery)
    [got] = await relay.wait(1)
    assert got.rcpt_tos == ["amy@example.com"]
    bad = await ended(outboxes.FAILED, key="agent:bad")
    assert bad.reason is not None and bad.reason.startswith("cannot compose")


async def test_a_backlog_goes_out_in_one_pass(sending: Mailer, relay: Relay) -> None:
    """More mail than one batch is sent in one pass, not one batch per poll."""
    sender = sending.connector.sender
    assert sender is not None
    await sender.stop()
    now = datetime.now(UTC)
    port = sending.client.app[OUTBOUND]["email/email"]
    count = outbound.BATCH * 2 + 7
    async with in_transaction():
        for i in range(count):
            to = f"buyer{i}@example.com"
            await port.enqueue(
                Delivery(
                    f"agent:{i}", uuid.uuid4(), "0K3M7Q2X9HT", "email/email", to, "好", now, now
                )
            )
    assert await sender.run_once() == count
    assert len(relay.mails) == count
