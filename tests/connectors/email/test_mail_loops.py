"""Robots and bounces: the hub's automatic mail never feeds a loop, bounces reach their ticket."""

from __future__ import annotations

import asyncio
import itertools

from intake_hub.connectors.email import outbox
from intake_hub.storage import outboxes
from intake_hub.storage.models import Event, MailAddress, MailOutbound
from tests.connectors.email.conftest import Mailer, ended, inbound, tickets
from tests.connectors.email.relay import Received, Relay
from tests.connectors.email.test_smtp import plain
from tests.web.conftest import AUTH

ROBOT = "robot@autoresponder.example"
# rules/replies.yaml loop_guard: 3 automatic replies per address per 10 minutes.
CAP = 3


def dsn(original_id: str, recipient: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A Postfix-style delivery status notification returning our mail's headers."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: service@shop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{status}-{original_id}>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\n"
        f"<{recipient}>: host mx.example.net said: 550 {status} User unknown\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: service@shop.example\r\nTo: {recipient}\r\nMessage-ID: <{original_id}>\r\n"
        "--b--\r\n"
    ).encode()


def robot(mailer: Mailer, relay: Relay, *, threads: bool) -> list[asyncio.Task[object]]:
    """Make the relay's recipient a robot that answers every mail it gets, unmarked."""
    sent: list[asyncio.Task[object]] = []
    counter = itertools.count()

    def answer(got: Received) -> None:
        n = next(counter)
        raw = plain(f"I am away ({n})", "I am out of the office.", sender=ROBOT, mid=f"<bot{n}@x>")
        if threads:
            ref = f"\r\nIn-Reply-To: {got.message['Message-ID']}\r\n\r\n".encode()
            raw = raw.replace(b"\r\n\r\n", ref, 1)
        sent.append(asyncio.create_task(mailer.send(raw, mail_from=ROBOT)))

    relay.on_mail = answer
    return sent


async def quiet(relay: Relay, mailer: Mailer, seconds: float = 1.5) -> None:
    """Wait until no mail has moved either way for `seconds`."""
    seen = -1
    while seen != len(relay.mails):
        seen = len(relay.mails)
        await mailer.settle()
        await asyncio.sleep(seconds)


async def test_a_robot_that_answers_everything_gets_at_most_the_cap(
    sending: Mailer, relay: Relay
) -> None:
    """An unmarked robot writing fresh mail gets three acknowledgements, then silence."""
    tasks = robot(sending, relay, threads=False)
    await sending.send(plain("hello", "a robot's first mail", sender=ROBOT, mid="<bot-first@x>"))
    await quiet(relay, sending)
    await asyncio.gather(*tasks)
    assert len(relay.mails) == CAP
    # Every robot mail is still a ticket (nothing lost), only the answers stop.
    assert len(await tickets()) == CAP + 1


async def test_a_robot_that_threads_stops_after_one_answer(sending: Mailer, relay: Relay) -> None:
    """A robot replying in our thread joins the ticket, which is never acknowledged again."""
    tasks = robot(sending, relay, threads=True)
    await sending.send(plain("hello", "first", sender=ROBOT, mid="<bot-t@x>"))
    await quiet(relay, sending)
    await asyncio.gather(*tasks)
    assert len(relay.mails) == 1
    [ticket] = await tickets()
    assert len(await inbound(ticket.number)) == 2


async def test_a_bounce_joins_its_ticket_and_holds_back_automatic_mail(
    sending: Mailer, relay: Relay
) -> None:
    """The DSN is on the ticket, the address is failing: notices stop, agents still reach it."""
    await sending.send(plain("退款", "请退款", sender="gone@example.net", mid="<g1@example.net>"))
    [ack] = await relay.wait(1)
    ours = str(ack.message["Message-ID"]).strip("<>")
    await sending.send(dsn(ours, "gone@example.net"), mail_from="")
    await sending.settle()
    [ticket] = await tickets()
    texts = [m.text for m in await inbound(ticket.number)]
    assert len(texts) == 2 and "User unknown" in texts[1]
    row = await MailOutbound.get(message_id=ours)
    assert row.status == outbox.BOUNCED
    shown = [m for m in (await sending.ticket(ticket.number))["messages"] if m["delivery"]]
    assert [m["delivery"]["status"] for m in shown] == ["bounced"]
    assert await Event.filter(ticket_id=ticket.id, kind="mail_bounced").exists()
    assert (await MailAddress.get(address="gone@example.net")).failing_since is not None
    resp = await sending.client.post(
        f"/api/v1/tickets/{ticket.number}/status", json={"status": "resolved"}, headers=AUTH
    )
    assert resp.status == 200
    notice = await ended(outboxes.SKIPPED, key__startswith="status:")
    assert notice.reason == "address failing"
    resp = await sending.client.post(
        f"/api/v1/tickets/{ticket.number}/replies", json={"text": "请确认邮箱"}, headers=AUTH
    )
    assert resp.status == 201
    await relay.wait(2)


async def test_a_delay_notice_joins_the_ticket_without_marking_the_address(
    sending: Mailer, relay: Relay
) -> None:
    """A 4.x.x `delayed` report is kept on the ticket; the address still gets mail."""
    await sending.send(plain("发票", "要发票", sender="slow@example.net", mid="<s1@example.net>"))
    [ack] = await relay.wait(1)
    ours = str(ack.message["Message-ID"]).strip("<>")
    await sending.send(dsn(ours, "slow@example.net", "4.4.1", "delayed"), mail_from="")
    await sending.settle()
    [ticket] = await tickets()
    assert len(await inbound(ticket.number)) == 2
    assert not await MailAddress.filter(address="slow@example.net").exists()
    assert (await MailOutbound.get(message_id=ours)).status == outboxes.SENT


async def test_mail_from_a_failing_address_makes_it_work_again(
    sending: Mailer, relay: Relay
) -> None:
    """After a bounce, a person writing from the address is acknowledged again."""
    await sending.send(plain("一", "第一封", sender="back@example.net", mid="<b1@example.net>"))
    [ack] = await relay.wait(1)
    ours = str(ack.message["Message-ID"]).strip("<>")
    await sending.send(dsn(ours, "back@example.net"), mail_from="")
    await sending.settle()
    await sending.send(plain("二", "邮箱修好了", sender="back@example.net", mid="<b2@example.net>"))
    [_, again] = await relay.wait(2)
    assert again.rcpt_tos == ["back@example.net"]
    assert (await MailAddress.get(address="back@example.net")).failing_since is None
