"""A real SMTP relay for the tests: aiosmtpd on loopback, keeping what the hub sends."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    """One mail the relay took: its SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Relay:
    """Answers DATA with `answer()` (250 unless a test says otherwise) and keeps each mail."""

    mails: list[Received] = field(default_factory=list)
    # Replies to give before accepting: "451 ...", "550 ..."; consumed one per DATA.
    answers: list[str] = field(default_factory=list)
    # Called with each accepted mail (a robot that answers, say).
    on_mail: Callable[[Received], None] | None = None
    server: asyncio.Server | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>` for INTAKE_HUB_SMTP_RELAY."""
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Take the mail, or give the next scripted refusal."""
        if self.answers:
            return self.answers.pop(0)
        msg = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(msg, EmailMessage)
        got = Received(envelope.mail_from or "", list(envelope.rcpt_tos), msg)
        self.mails.append(got)
        self.arrived.set()
        if self.on_mail is not None:
            self.on_mail(got)
        return "250 2.0.0 Queued"

    async def wait(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` mails, waiting for them to arrive."""
        async with asyncio.timeout(timeout):
            while len(self.mails) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.mails[:count]


def _login(user: str, password: str) -> Callable[..., AuthResult]:
    def check(
        server: SMTP, session: Session, env: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        wanted = (user.encode(), password.encode())
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == wanted
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


async def start_relay(
    port: int = 0, *, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
) -> Relay:
    """A relay on loopback (a free port by default), on the running loop.

    `tls`: STARTTLS offered and required; `login`: AUTH required, over TLS only.
    """
    relay = Relay()
    loop = asyncio.get_running_loop()
    options: dict[str, Any] = {}
    if tls is not None:
        options |= {"tls_context": tls, "require_starttls": True}
    if login is not None:
        options |= {"authenticator": _login(*login), "auth_required": True}
    relay.server = await loop.create_server(
        lambda: SMTP(relay, decode_data=False, enable_SMTPUTF8=True, **options), "127.0.0.1", port
    )
    return relay
