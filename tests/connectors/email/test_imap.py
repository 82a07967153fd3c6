"""The IMAP reader against a real Dovecot: every mail once, in UID order, the mailbox untouched."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from intake_hub.connectors.email import imap_state
from intake_hub.connectors.email.config import ImapConfig
from intake_hub.connectors.email.imap import ImapReader
from intake_hub.connectors.email.imap_state import Position
from intake_hub.storage import db
from tests.connectors.email import dovecot as dc
from tests.connectors.email.conftest import MakeMailer, tickets
from tests.connectors.email.dovecot import Dovecot
from tests.connectors.email.relay import Relay

INSTANCE = "email"
OK = "250 2.0.0 Ok: queued"
LATER = "451 4.3.0 Try again later"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    """One real Dovecot for the module; each test reads a mailbox of its own."""
    with dc.running() as server:
        yield server


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[None]:
    """The models on a fresh migrated database (SQLite; PostgreSQL too when it runs)."""
    await db.open_db(db_url)
    try:
        yield
    finally:
        await db.close_db()


@pytest.fixture
async def mailbox(dovecot: Dovecot) -> str:
    """A new, empty mailbox on the server."""
    name = f"Shop{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(dovecot.create, name)
    return name


class Inbox:
    """A `receive` that records each raw mail and answers 451 once for chosen subjects."""

    def __init__(self, later_once: tuple[str, ...] = ()) -> None:
        self.raws: list[bytes] = []
        self._later = set(later_once)

    async def __call__(self, raw: bytes) -> str:
        self.raws.append(raw)
        subject = self.subject(raw)
        if subject in self._later:
            self._later.discard(subject)
            return LATER
        return OK

    @staticmethod
    def subject(raw: bytes) -> str:
        """The Subject of a raw mail."""
        return str(message_from_bytes(raw)["Subject"])

    @property
    def subjects(self) -> list[str]:
        """Subjects of every mail handed over, in order, repeats included."""
        return [self.subject(raw) for raw in self.raws]


def mail(subject: str) -> bytes:
    """A small raw mail with a Message-ID of its own."""
    return (
        f"From: Li Wei <li.wei@example.net>\r\n"
        f"To: service@shop.example\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.net>\r\n"
        f"\r\n"
        f"About my order: {subject}\r\n"
    ).encode()


async def deliver(server: Dovecot, mailbox: str, *subjects: str) -> list[bytes]:
    """APPEND one mail per subject (the server gives the UIDs); their raw bytes."""
    raws = [mail(s) for s in subjects]
    for raw in raws:
        await asyncio.to_thread(server.append, raw, mailbox)
    return raws


def config(server: Dovecot, mailbox: str, **changes: object) -> ImapConfig:
    """The reader's settings for the test user on `server` (no TLS on loopback).

    `start_at: all` unless changed, so mail put there before the reader starts counts.
    """
    return ImapConfig.model_validate(
        {
            "server": server.server,
            "security": "none",
            "username": dc.USER,
            "password": dc.PASSWORD,
            "mailbox": mailbox,
            "start_at": "all",
            **changes,
        }
    )


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Wait until `check()` holds; the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def reader(server: Dovecot, mailbox: str, inbox: Inbox, **changes: object) -> ImapReader:
    """A reader of `mailbox` for the instance, quick to retry."""
    return ImapReader(config(server, mailbox, **changes), INSTANCE, inbox, retry_s=(0.2, 0.5))


async def test_mail_already_there_is_taken_once_in_uid_order(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """Mail waiting in the mailbox when the hub starts is handed over once each, oldest first."""
    raws = await deliver(dovecot, mailbox, "first", "second", "third")
    inbox = Inbox()
    imap = reader(dovecot, mailbox, inbox)
    await imap.start()
    try:
        await until(lambda: len(inbox.raws) >= 3)
        await asyncio.sleep(0.5)
    finally:
        await imap.stop()
    assert inbox.raws == raws
    at = await imap_state.position(INSTANCE, mailbox)
    assert at is not None and at.last_uid == 3


async def test_a_first_start_leaves_old_mail_and_takes_what_comes_next(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """By default the mail already in the mailbox stays there; the next mail is taken."""
    await deliver(dovecot, mailbox, "old 1", "old 2")
    inbox = Inbox()
    first = reader(dovecot, mailbox, inbox, start_at="new")
    assert await first.run_once() == 0
    await deliver(dovecot, mailbox, "new 1")
    assert await first.run_once() == 1
    await first.stop()
    assert inbox.subjects == ["new 1"]


async def test_new_mail_while_idle_is_taken_within_seconds(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """Mail arriving while the reader IDLEs is handed over within seconds, not at the next poll."""
    inbox = Inbox()
    imap = reader(dovecot, mailbox, inbox, poll_s=600, idle_s=600)
    await imap.start()
    try:
        await until(lambda: imap._client is not None and imap._client.has_pending_idle())
        await deliver(dovecot, mailbox, "arrived while idle")
        took = await until(lambda: len(inbox.raws) == 1, timeout=5)
        await deliver(dovecot, mailbox, "and another")
        await until(lambda: len(inbox.raws) == 2, timeout=5)
    finally:
        await imap.stop()
    assert took < 5
    assert inbox.subjects == ["arrived while idle", "and another"]


async def test_restart_takes_only_mail_from_the_downtime(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """After a restart the hub takes the mail that came while it was down, and nothing twice."""
    await deliver(dovecot, mailbox, "before 1", "before 2")
    first = Inbox()
    imap = reader(dovecot, mailbox, first)
    await imap.start()
    await until(lambda: len(first.raws) == 2)
    await imap.stop()

    await deliver(dovecot, mailbox, "while down 1", "while down 2")
    second = Inbox()
    again = reader(dovecot, mailbox, second)
    await again.start()
    try:
        await until(lambda: len(second.raws) >= 2)
        await asyncio.sleep(0.5)
    finally:
        await again.stop()
    assert first.subjects == ["before 1", "before 2"]
    assert second.subjects == ["while down 1", "while down 2"]


async def test_a_451_holds_the_mail_and_skips_nothing_after_it(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """A mail the hub cannot take now is offered again next pass, before the mail behind it."""
    await deliver(dovecot, mailbox, "one", "two", "three")
    inbox = Inbox(later_once=("two",))
    imap = reader(dovecot, mailbox, inbox)
    try:
        assert await imap.run_once() == 1
        assert inbox.subjects == ["one", "two"]
        held = await imap_state.position(INSTANCE, mailbox)
        assert held is not None and held.last_uid == 1
        assert await imap.run_once() == 2
        assert await imap.run_once() == 0
    finally:
        await imap.stop()
    assert inbox.subjects == ["one", "two", "two", "three"]


async def test_a_new_uidvalidity_reads_the_mailbox_again(
    database: None, dovecot: Dovecot, mailbox: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A mailbox deleted and made anew (new UIDVALIDITY) is read from its first mail again."""
    await deliver(dovecot, mailbox, "old 1", "old 2")
    inbox = Inbox()
    imap = reader(dovecot, mailbox, inbox)
    try:
        assert await imap.run_once() == 2
        before = await imap_state.position(INSTANCE, mailbox)
        await imap.stop()
        await asyncio.to_thread(dovecot.recreate, mailbox)
        # Restored from a backup: the same two mails and a new one, numbered from 1 again.
        await deliver(dovecot, mailbox, "old 1", "old 2", "new 3")
        with caplog.at_level(logging.WARNING):
            assert await imap.run_once() == 3
        after = await imap_state.position(INSTANCE, mailbox)
    finally:
        await imap.stop()
    assert inbox.subjects == ["old 1", "old 2", "old 1", "old 2", "new 3"]
    assert before is not None and after is not None
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 3
    assert "UIDVALIDITY changed" in caplog.text


async def test_server_down_at_start_is_read_once_it_is_up(database: None) -> None:
    """A hub started while the mail server is down reads the mailbox by itself once it is up."""
    server = dc.stopped()
    inbox = Inbox()
    imap = reader(server, "INBOX", inbox)
    await imap.start()
    try:
        await asyncio.sleep(1.0)
        assert inbox.raws == []
        await asyncio.to_thread(server.start)
        await deliver(server, "INBOX", "sent while the hub waited")
        await until(lambda: len(inbox.raws) == 1, timeout=15)
    finally:
        await imap.stop()
        await asyncio.to_thread(server.stop)
        shutil.rmtree(server.base, ignore_errors=True)
    assert inbox.subjects == ["sent while the hub waited"]


async def test_the_mailbox_is_left_unread_and_whole(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """Mail the hub took still shows as unread in the merchant's mail client, none deleted."""
    await deliver(dovecot, mailbox, "keep me unread", "me too")
    inbox = Inbox()
    imap = reader(dovecot, mailbox, inbox)
    try:
        assert await imap.run_once() == 2
    finally:
        await imap.stop()
    flags = await asyncio.to_thread(dovecot.flags, mailbox)
    assert sorted(flags) == [1, 2]
    assert all("\\Seen" not in f and "\\Deleted" not in f for f in flags.values()), flags


async def test_stop_while_idle_logs_out_promptly(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """Stopping the hub while it IDLEs ends the session at once with a LOGOUT."""
    imap = reader(dovecot, mailbox, Inbox(), idle_s=600)
    await imap.start()
    await until(lambda: imap._client is not None and imap._client.has_pending_idle())
    started = time.monotonic()
    await imap.stop()
    assert time.monotonic() - started < 5
    await until(lambda: "Logged out" in dovecot.log().rsplit("Login: user=<shop>", 1)[-1])


async def test_the_password_is_never_logged(
    database: None, dovecot: Dovecot, mailbox: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a login nor a refused login writes the mailbox password to the log."""
    with caplog.at_level(logging.DEBUG):
        imap = reader(dovecot, mailbox, Inbox())
        await imap.run_once()
        await imap.stop()
        wrong = ImapReader(
            config(dovecot, mailbox).model_copy(update={"password": "wrong-pass-123"}),
            INSTANCE,
            Inbox(),
            retry_s=(0.2,),
        )
        await wrong.start()
        await until(lambda: "LOGIN as shop" in caplog.text)
        await wrong.stop()
    assert dc.PASSWORD not in caplog.text
    assert "wrong-pass-123" not in caplog.text


async def test_a_late_save_never_moves_the_position_back(database: None) -> None:
    """A slow save of an older UID cannot make mail already taken be read again."""
    await imap_state.save(INSTANCE, "INBOX", Position(7, 5))
    await imap_state.save(INSTANCE, "INBOX", Position(7, 3))
    assert await imap_state.position(INSTANCE, "INBOX") == Position(7, 5)
    await imap_state.save(INSTANCE, "INBOX", Position(9, 1))
    assert await imap_state.position(INSTANCE, "INBOX") == Position(9, 1)


async def test_mail_arriving_during_a_pass_is_not_left_for_the_idle_limit(
    database: None, dovecot: Dovecot, mailbox: str
) -> None:
    """Mail arriving while earlier mail is handed over is taken at once, not after idle_s."""
    await deliver(dovecot, mailbox, "one", "two")
    inbox = Inbox()

    async def receive(raw: bytes) -> str:
        if Inbox.subject(raw) == "one":
            # Noticed by the server while the reader still fetches "two".
            await deliver(dovecot, mailbox, "during the pass")
        return await inbox(raw)

    imap = ImapReader(config(dovecot, mailbox, idle_s=600, poll_s=600), INSTANCE, receive)
    await imap.start()
    try:
        await until(lambda: len(inbox.raws) == 3, timeout=5)
    finally:
        await imap.stop()
    assert inbox.subjects == ["one", "two", "during the pass"]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_and_starttls_read_the_mailbox(database: None, security: str) -> None:
    """With `tls` or `starttls` the mailbox is read over TLS, the certificate checked."""
    with dc.running(tls=True) as server:
        await deliver(server, "INBOX", "over tls")
        port = server.tls_port if security == "tls" else server.port
        settings = ImapConfig.model_validate(
            {
                "server": f"127.0.0.1:{port}",
                "security": security,
                "username": dc.USER,
                "password": dc.PASSWORD,
                "start_at": "all",
            }
        )
        inbox = Inbox()
        trusting = Trusting(settings, INSTANCE, inbox, certificate=server.certificate)
        try:
            assert await trusting.run_once() == 1
        finally:
            await trusting.stop()
        assert inbox.subjects == ["over tls"]
        assert "TLS" in server.log().rsplit("Login: user=<shop>", 1)[-1].split("\n", 1)[0]


class Trusting(ImapReader):
    """A reader that trusts the test server's self-signed certificate, and only that."""

    def __init__(self, *args: Any, certificate: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._certificate = certificate

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._certificate))


async def test_a_mailbox_read_by_the_service_makes_tickets_and_answers(
    dovecot: Dovecot, mailbox: str, make_mailer: MakeMailer, relay: Relay
) -> None:
    """Mail arriving in the shop's mailbox becomes a ticket and is acknowledged by mail."""
    settings = config(dovecot, mailbox).model_dump()
    served = await make_mailer(
        imap=settings, relay=relay.address, relay_security="none", mail_from="service@shop.example"
    )
    await deliver(dovecot, mailbox, "my parcel is late")
    [ack] = await relay.wait(1)
    assert ack.rcpt_tos == ["li.wei@example.net"]
    await served.settle()
    [ticket] = await tickets()
    assert ticket.subject == "my parcel is late"
    assert ticket.number in str(ack.message["Subject"]).replace("-", "")
