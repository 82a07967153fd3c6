"""Mail into a gateway that is SIGKILLed: every mail answered 250 is stored and answered once."""

from __future__ import annotations

import asyncio
import signal
import smtplib
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from tests.faults.conftest import Cluster, fetch, wait_stored
from tests.served.conftest import free_port

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.timeout(120)]

N = 20


class Relay:
    """The outbound relay: records who each mail went to (aiosmtpd in its own thread)."""

    def __init__(self) -> None:
        self.to: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        """Keep the recipients; accept."""
        with self._lock:
            self.to += envelope.rcpt_tos
        return "250 2.0.0 Queued"

    def wait(self, count: int, timeout: float = 30) -> list[str]:
        """The recipients once `count` mails arrived (or what came by the deadline)."""
        deadline = time.monotonic() + timeout
        while len(self.to) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.to)


def _mail(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"buyer{i}@example.com"
    msg["To"] = "service@shop.example"
    msg["Subject"] = f"订单 {i} 没到"
    msg["Message-ID"] = f"<gw-{i}@example.com>"
    msg.set_content(f"第 {i} 个订单还没到")
    return msg.as_bytes(policy=SMTP)


def test_mail_accepted_by_a_killed_gateway_is_stored_and_answered_once(cluster: Cluster) -> None:
    """250s from a gateway SIGKILLed before any worker ran: N tickets, N auto-replies, once."""
    relay = Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp_port = free_port()
    env = {
        "INTAKE_HUB_MAIL_RECIPIENTS": "service@shop.example",
        "INTAKE_HUB_SMTP_PORT": str(smtp_port),
        "INTAKE_HUB_SMTP_RELAY": f"127.0.0.1:{controller.port}",
        "INTAKE_HUB_MAIL_FROM": "客服 <service@shop.example>",
    }
    try:
        gateway = cluster.start("gateway", **env)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
            for i in range(N):
                assert (
                    smtp.sendmail(f"buyer{i}@example.com", ["service@shop.example"], _mail(i)) == {}
                )
        gateway.stop(signal.SIGKILL)

        cluster.start("worker")
        assert asyncio.run(wait_stored(cluster.database_url, N, timeout=40)) == N
        again = cluster.start("gateway", **env)
        to = relay.wait(N)
        assert sorted(to) == sorted(f"buyer{i}@example.com" for i in range(N))
        # A restarted gateway finds nothing more to send.
        assert again.stop(signal.SIGTERM) == 0
        cluster.start("gateway", **env)
        time.sleep(3)
        assert len(relay.to) == N
        rows = asyncio.run(fetch(cluster.database_url, "SELECT status FROM mail_outbound"))
        assert [r["status"] for r in rows] == ["sent"] * N
    finally:
        controller.stop()
