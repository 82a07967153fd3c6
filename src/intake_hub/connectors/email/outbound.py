"""Mail's way out: deliveries queued in the outbox, and the sender that hands each to the relay.

Every process that mounts the instance polls; the outbox's claim makes one of them send
each mail. A relay's 4xx, a refused connection or a timeout is tried again with jittered
backoff for a day; a 5xx for the mail itself (a refused recipient, refused content) ends
it as failed, recorded on the ticket.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiosmtplib

from intake_hub.connectors.email import outbox
from intake_hub.connectors.email.compose import Outgoing, compose, new_message_id, subject_for
from intake_hub.connectors.email.config import EmailConfig
from intake_hub.envelope import Channel
from intake_hub.periodic import Periodic
from intake_hub.storage import outboxes
from intake_hub.tickets.outbound import Delivery

log = logging.getLogger(__name__)

# A claim older than this belongs to a worker that died mid-send.
STALE_CLAIM_S = 300.0
# Mails claimed and sent over one relay connection; a full batch is followed at once.
BATCH = 50
BACKOFF_S = (30.0, 120.0, 600.0, 1800.0, 3600.0)
HORIZON = timedelta(days=1)
# The relay's trouble, not the mail's (unreachable, a failed login or STARTTLS, a refused
# sender, a dropped connection): the mail waits until the relay is fixed.
_RELAY_TROUBLE = (OSError, aiosmtplib.SMTPException)
# The relay's answer about this mail itself: a 5xx ends it, a 4xx is tried again.
_ABOUT_THE_MAIL = (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError)


def _auto_submitted(key: str) -> str | None:
    """RFC 3834's mark: auto-replies answer, notices are generated, agents' replies neither."""
    if key.startswith("reply:"):
        return "auto-replied"
    return None if key.startswith("agent:") else "auto-generated"


class MailOutbox:
    """One instance's `Outbound`: a delivery is an outbox row, sent later by its sender."""

    channel: Channel = "email"

    def __init__(self, config: EmailConfig) -> None:
        self.config = config

    async def enqueue(self, delivery: Delivery) -> None:
        """Insert the outbox row in the caller's transaction; a queued key stays as it was."""
        if delivery.source != f"email/{self.config.name}":
            raise ValueError(f"{delivery.source} is not email/{self.config.name}")
        await outbox.enqueue(
            delivery.key,
            self.config.name,
            delivery.customer_key,
            delivery.number,
            delivery.ticket_id,
            delivery.text,
            new_message_id(delivery.number, self.config.id_domain),
            automatic=_auto_submitted(delivery.key) is not None,
            now=delivery.at,
        )

    async def queued(self, key: str) -> bool:
        """Whether a delivery with `key` was queued."""
        return await outbox.queued(key)


class Sender:
    """Polls one instance's outbox: resolves stored auto-replies, then sends what is due."""

    def __init__(self, config: EmailConfig, *, backoff_s: Sequence[float] = ()) -> None:
        self.config = config
        self.backoff_s = tuple(backoff_s or BACKOFF_S)
        self._poller = Periodic(f"mail-out/{config.name}", config.outbound_poll_s, self.run_once)

    def start(self) -> None:
        """Begin polling (the database is open by now)."""
        self._poller.start()

    async def stop(self) -> None:
        """Stop polling; a send in flight is interrupted and `reap` queues it again."""
        await self._poller.stop()

    async def run_once(self) -> int:
        """One pass: resolve waiting auto-replies and send all that is due, a batch per
        relay connection, until a batch comes back short; returns mails sent."""
        name = self.config.name
        await outbox.reap(name, datetime.now(UTC), STALE_CLAIM_S)
        sent = 0
        while True:
            now = datetime.now(UTC)
            await outbox.resolve_waiting(name, now)
            jobs = await outbox.claim_due(name, now, BATCH)
            if not jobs:
                return sent
            try:
                async with self._client() as smtp:
                    for job in jobs:
                        sent += await self._send(smtp, job)
            except _RELAY_TROUBLE as exc:
                log.warning("email/%s: relay %s unavailable: %r", name, self.config.relay, exc)
                for job in jobs:
                    await self._later(job, f"relay: {exc!r}")
                return sent
            if len(jobs) < BATCH:
                return sent

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        host, port = c.relay_address or ("127.0.0.1", 25)
        security = c.relay_security
        return aiosmtplib.SMTP(
            hostname=host,
            port=port,
            username=c.relay_username or None,
            password=c.relay_password or None,
            use_tls=security == "tls",
            # None: STARTTLS when the relay offers it.
            start_tls={"auto": None, "starttls": True}.get(security, False),
            tls_context=ssl.create_default_context(),
            timeout=30,
        )

    async def _send(self, smtp: aiosmtplib.SMTP, job: outbox.Job) -> int:
        now = datetime.now(UTC)
        if job.automatic and await outbox.failing(job.to):
            # Its mail bounced: an automatic mail would only bounce again.
            await outbox.finish(job, outboxes.SKIPPED, now, error="address failing")
            return 0
        thread = await outbox.thread(job)
        try:
            mail = self._compose(job, thread, now)
        except Exception as exc:
            # An address no mail can carry: trying again would fail the same way.
            await outbox.finish(job, outboxes.FAILED, now, error=f"cannot compose: {exc}"[:200])
            return 0
        try:
            await smtp.send_message(mail)
        except _ABOUT_THE_MAIL as exc:
            if exc.code >= 500:
                log.info("email/%s: %s refused: %s %s", self.config.name, job.key, exc.code, exc)
                await outbox.finish(
                    job, outboxes.FAILED, now, error=f"{exc.code} {exc.message}"[:200]
                )
                return 0
            await self._later(job, f"{exc.code} {exc.message}")
            return 0
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(code >= 500 for code in codes):
                await outbox.finish(job, outboxes.FAILED, now, error=str(exc)[:200])
            else:
                await self._later(job, str(exc))
            return 0
        await outbox.finish(job, outboxes.SENT, datetime.now(UTC))
        return 1

    def _compose(self, job: outbox.Job, thread: outbox.Thread, now: datetime) -> EmailMessage:
        return compose(
            Outgoing(
                to=job.to,
                sender=self.config.mail_from,
                subject=subject_for(job.number, thread.subject, thread.first_text),
                text=job.text,
                message_id=job.message_id,
                number=job.number,
                at=now,
                in_reply_to=thread.in_reply_to,
                references=thread.references,
                auto_submitted=_auto_submitted(job.key),
            )
        )

    async def _later(self, job: outbox.Job, error: str) -> None:
        now = datetime.now(UTC)
        bound = self.backoff_s[min(job.attempts, len(self.backoff_s)) - 1]
        retry_at = now + timedelta(seconds=random.uniform(bound / 2, bound))
        if retry_at - job.created_at > HORIZON:
            log.warning(
                "email/%s: %s given up after %d attempts", self.config.name, job.key, job.attempts
            )
            await outbox.finish(job, outboxes.FAILED, now, error=f"gave up: {error}"[:200])
            return
        await outbox.finish(job, outboxes.PENDING, now, error=error[:200], retry_at=retry_at)
