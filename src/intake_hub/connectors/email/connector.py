"""Mail delivered over SMTP becomes tickets: 250 only once the message is durable.

Each check answers before anything is stored: a recipient not served (550), too many
recipients (452), too large (552, aiosmtpd's SIZE limit). Mail that cannot be parsed is
kept aside and answered 250, so the MTA never bounces it to a stranger; trouble storing
or emitting answers 451 and the MTA retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default
from typing import ClassVar, Self

from aiohttp import web
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from pydantic import ValidationError

from intake_hub import ticketno
from intake_hub.attachments import Refused, check
from intake_hub.connectors.base import ConnectorConfig, Core
from intake_hub.connectors.email import outbox
from intake_hub.connectors.email.compose import new_message_id
from intake_hub.connectors.email.config import EmailConfig
from intake_hub.connectors.email.imap import ImapReader
from intake_hub.connectors.email.listener import Limits, Listener
from intake_hub.connectors.email.normalize import CHANNEL, original_ref, to_envelope
from intake_hub.connectors.email.outbound import MailOutbox, Sender
from intake_hub.connectors.email.parse import Mail, parse
from intake_hub.connectors.email.unparsed import keep_aside
from intake_hub.envelope import AttachmentRef, Envelope, Identity, Proof
from intake_hub.jsonapi import ApiDoc
from intake_hub.tickets.outbound import Outbound
from intake_hub.tickets.read import ticket_of

log = logging.getLogger(__name__)

# Namespace of envelope ids: one per (instance, Message-ID), so a redelivery is a duplicate.
_IDS = uuid.UUID("5b0e8f6c-2d41-5a3b-9c7e-1f2a3b4c5d6e")
ACCEPTED = "250 2.0.0 Message accepted"
KEPT_ASIDE = "250 2.0.0 Kept aside for review"
TRY_LATER = "451 4.3.0 Temporary trouble storing the message, try again later"
NOT_SERVED = "550 5.1.1 No such recipient here"
TOO_MANY = "452 4.5.3 Too many recipients"


@dataclass
class EmailConnector:
    """Takes mail for the instance's addresses from an MTA over SMTP."""

    config: EmailConfig
    core: Core
    listener: Listener = field(init=False)
    sender: Sender | None = field(init=False, default=None)
    mailbox: ImapReader | None = field(init=False, default=None)
    _outbox: MailOutbox | None = field(init=False, default=None)

    Config: ClassVar[type[ConnectorConfig]] = EmailConfig
    type: ClassVar[str] = "email"

    def __post_init__(self) -> None:
        self.listener = Listener(
            self,
            host=self.config.listen_host,
            port=self.config.listen_port,
            limits=Limits(
                max_bytes=self.config.max_message_bytes,
                timeout_s=self.config.timeout_s,
                max_session_s=self.config.max_session_s,
                max_sessions=self.config.max_sessions,
            ),
        )
        if self.config.imap is not None:
            self.mailbox = ImapReader(self.config.imap, self.config.name, self._from_mailbox)
        if self.config.sends:
            self.sender = Sender(self.config)
            self._outbox = MailOutbox(self.config)

    @classmethod
    def create(cls, config: ConnectorConfig, core: Core) -> Self:
        """The mail intake for `config`."""
        assert isinstance(config, EmailConfig)
        return cls(config, core)

    @property
    def source(self) -> str:
        """`email/<name>`."""
        return f"{CHANNEL}/{self.config.name}"

    @property
    def identity(self) -> Identity:
        """Claimed: anyone can write any From."""
        return "claimed"

    @property
    def outbound(self) -> Outbound | None:
        """Mail through the relay; None without one: replies show on the status page."""
        return self._outbox

    def openapi(self) -> ApiDoc | None:
        """None: mail comes over SMTP, not HTTP."""
        return None

    def routes(self) -> Sequence[web.RouteDef]:
        """None: the listener is started by `start`."""
        return []

    async def start(self) -> None:
        """Listen for SMTP on the configured port when the instance serves addresses."""
        if self.config.recipients:
            await self.listener.start()
        if self.mailbox is not None:
            await self.mailbox.start()
        if self.sender is not None:
            self.sender.start()

    async def stop(self) -> None:
        """Stop listening and sending; open sessions are closed (not yet answered 250)."""
        await self.listener.stop()
        if self.mailbox is not None:
            await self.mailbox.stop()
        if self.sender is not None:
            await self.sender.stop()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Take a recipient this instance serves, up to the limit."""
        if len(envelope.rcpt_tos) >= self.config.max_recipients:
            return TOO_MANY
        if not self.config.serves(address):
            self.core.metrics.rejected.labels(CHANNEL, "recipient").inc()
            return NOT_SERVED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        """The mail's answer: 250 once it is durable (or kept aside), else 451."""
        raw = envelope.original_content or b""
        return await self.receive(raw, envelope.mail_from or "", list(envelope.rcpt_tos))

    async def _from_mailbox(self, raw: bytes) -> str:
        """A mail read over IMAP: its envelope sender is the `Return-Path` the MTA wrote."""
        path = BytesParser(policy=default).parsebytes(raw, headersonly=True)["Return-Path"]
        return await self.receive(raw, str(path).strip() if path is not None else None, [])

    async def receive(self, raw: bytes, mail_from: str | None, rcpt_tos: list[str]) -> str:
        """Parse, store and emit one delivered mail; the SMTP reply to give (250, 451)."""
        started = time.perf_counter()
        try:
            mail = parse(raw, mail_from=mail_from, own_domain=self.config.id_domain)
        except Exception as exc:
            return await self._keep_aside(raw, mail_from or "", rcpt_tos, exc)
        try:
            env = await self._envelope(mail, raw)
        except ValidationError as exc:
            return await self._keep_aside(raw, mail_from or "", rcpt_tos, exc)
        except Exception:
            log.exception("%s: storing a mail's files failed", self.source)
            return TRY_LATER
        try:
            if self.sender is not None and mail.automatic is None:
                await self._expect_reply(mail, env)
            await self.core.emit(env)
        except Exception:
            log.exception("%s: emitting a mail failed", self.source)
            return TRY_LATER
        self.core.metrics.intake_latency.labels(CHANNEL).observe(time.perf_counter() - started)
        if mail.automatic:
            log.info("%s: automatic mail (%s) taken, no auto-reply", self.source, mail.automatic)
        return ACCEPTED

    async def _keep_aside(
        self, raw: bytes, mail_from: str, rcpt_tos: list[str], why: Exception
    ) -> str:
        """Keep unparsable mail for replay; 250, since bouncing it could reach a stranger."""
        try:
            path = await asyncio.to_thread(
                keep_aside, self.config.unparsed_dir, raw, mail_from, rcpt_tos, datetime.now(UTC)
            )
        except Exception:
            log.exception("%s: keeping an unparsable mail aside failed", self.source)
            return TRY_LATER
        self.core.metrics.rejected.labels(CHANNEL, "unparsable").inc()
        log.warning("%s: mail kept aside as %s: %s", self.source, path, why)
        return KEPT_ASIDE

    async def _files(self, mail: Mail, raw: bytes) -> tuple[list[AttachmentRef], list[str]]:
        """The original and each accepted file stored; a note line per refused file."""
        # Stored as is: check() would sniff the mail as text and convert it.
        refs = [original_ref(await self.core.files.put(raw), len(raw))]
        notes: list[str] = []
        for f in mail.files:
            try:
                checked = await asyncio.to_thread(
                    check, f.data, name=f.name, max_bytes=self.config.max_message_bytes
                )
            except Refused as exc:
                notes.append(f"[attachment {f.name or 'unnamed'} refused: {exc.reason}]")
                continue
            digest = await self.core.files.put(checked.data)
            refs.append(
                AttachmentRef(
                    kind="file",
                    ref=digest,
                    name=checked.name,
                    content_type=checked.content_type,
                    size=len(checked.data),
                )
            )
        return refs, notes

    async def _expect_reply(self, mail: Mail, env: Envelope) -> None:
        """Note the auto-reply before the mail is accepted, so no crash can lose it."""
        now = datetime.now(UTC)
        await outbox.reachable(mail.from_address, now)
        message_id = new_message_id(env.ticket, self.config.id_domain)
        await outbox.expect_reply(
            self.config.name, env.id, mail.from_address, env.ticket, message_id, now
        )

    async def _proof(self, mail: Mail) -> Proof | None:
        """Why the mail may join a ticket: it answers or bounces our mail, or names its own."""
        name = self.config.name
        bounce = mail.bounce
        if bounce is not None and bounce.original_id is not None:
            if bounce.permanent:
                why = bounce.reason or "bounced"
                number = await outbox.bounced(
                    name, bounce.original_id, bounce.recipients, why, datetime.now(UTC)
                )
            else:
                number = await outbox.ticket_of_reference(name, [bounce.original_id])
            if number is not None:
                return Proof(kind="thread", ticket=number)
        if (number := await outbox.ticket_of_reference(name, mail.references)) is not None:
            return Proof(kind="thread", ticket=number)
        for number in ticketno.find_numbers(mail.subject):
            found = await ticket_of(number, CHANNEL, mail.from_address)
            if found is not None and found[1]:
                return Proof(kind="owner", ticket=found[0])
        return None

    async def _envelope(self, mail: Mail, raw: bytes) -> Envelope:
        files, notes = await self._files(mail, raw)
        return to_envelope(
            mail,
            instance=self.config.name,
            env_id=uuid.uuid5(_IDS, f"{self.source}:{mail.message_id}"),
            ticket=self.core.numbers.next(),
            received_at=datetime.now(UTC),
            files=files,
            notes=notes,
            proof=await self._proof(mail),
        )
