"""Session limits: a client cannot hold the listener with many or endless sessions."""

from __future__ import annotations

import asyncio
import smtplib
import socket

import pytest

from tests.connectors.email.conftest import MakeMailer


async def test_sessions_past_the_limit_get_421(make_mailer: MakeMailer) -> None:
    """With one session open and `max_sessions: 1`, the next client is told to come back."""
    mailer = await make_mailer(max_sessions=1)

    def second_while_first_open() -> int:
        with smtplib.SMTP("127.0.0.1", mailer.port, timeout=30) as first:
            first.ehlo()
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", mailer.port, timeout=30)
            first.noop()
        code: int = refused.value.smtp_code
        return code

    assert await asyncio.to_thread(second_while_first_open) == 421
    await asyncio.to_thread(lambda: smtplib.SMTP("127.0.0.1", mailer.port, timeout=30).quit())


async def test_a_session_ends_after_max_session_s(make_mailer: MakeMailer) -> None:
    """A session ends at `max_session_s` even while its idle timeout has far to go."""
    mailer = await make_mailer(max_session_s=0.2, timeout_s=600)

    def read_until_closed() -> bytes:
        # The socket's own timeout (30 s) fails the test if the listener never closes.
        with socket.create_connection(("127.0.0.1", mailer.port), timeout=30) as sock:
            received = b""
            while chunk := sock.recv(1024):
                received += chunk
            return received

    received = await asyncio.to_thread(read_until_closed)
    assert received.startswith(b"220")
