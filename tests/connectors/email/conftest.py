"""The whole service with the shipped email.yaml, its SMTP listener on a free port."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake_hub.app import create_app
from intake_hub.config import Settings
from intake_hub.connectors.email import outbound
from intake_hub.connectors.email.connector import EmailConnector
from intake_hub.connectors.registry import REGISTRY
from intake_hub.storage import outboxes
from intake_hub.storage.models import MailOutbound, Message, Ticket
from tests.connectors.email.relay import Relay, start_relay
from tests.web.conftest import AUTH, Client, settle

ROOT = Path(__file__).resolve().parents[3]
PAYLOADS = Path(__file__).parent / "payloads"
SERVED = "service@shop.example"


@dataclass
class Mailer:
    """The running service and a way to deliver raw mail to its listener with smtplib."""

    client: Client
    connector: EmailConnector
    unparsed: Path

    @property
    def port(self) -> int:
        """The port the listener picked."""
        return self.connector.listener.port

    def _send(self, raw: bytes, mail_from: str, to: list[str]) -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            refused: dict[str, Any] = smtp.sendmail(mail_from, to, raw)
            return refused

    async def send(
        self, raw: bytes, mail_from: str = "sender@example.net", to: list[str] | None = None
    ) -> dict[str, Any]:
        """Deliver `raw` over SMTP in a worker thread, as an MTA would; raises on refusal."""
        return await asyncio.to_thread(self._send, raw, mail_from, to or [SERVED])

    async def settle(self) -> None:
        """Wait until every accepted mail went through the pipeline."""
        await settle(self.client)

    async def ticket(self, number: str) -> dict[str, Any]:
        """Ticket `number` as the agent API shows it."""
        resp = await self.client.get(f"/api/v1/tickets/{number}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


def payload(name: str) -> bytes:
    """A recorded mail's raw bytes."""
    return (PAYLOADS / name).read_bytes()


async def tickets() -> list[Ticket]:
    """Every stored ticket, oldest first."""
    return await Ticket.all().order_by("created_at", "number")


async def inbound(number: str) -> list[Message]:
    """The customer's messages on ticket `number`."""
    return await Message.filter(ticket__number=number, direction="in").order_by("created_at")


MakeMailer = Callable[..., Awaitable[Mailer]]


@pytest.fixture
def make_mailer(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> MakeMailer:
    """Starts the service on `db_url` with the shipped email.yaml, some keys overridden."""

    async def make(**overrides: Any) -> Mailer:
        return await _start(settings, db_url, tmp_path, monkeypatch, aiohttp_client, overrides)

    return make


@pytest.fixture
async def mailer(make_mailer: MakeMailer) -> Mailer:
    """The service with the shipped email instance serving `service@` and `@help.`."""
    return await make_mailer()


async def _start(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
    overrides: dict[str, Any],
) -> Mailer:
    directory = tmp_path / "connectors"
    directory.mkdir()
    shipped = yaml.safe_load((ROOT / "connectors" / "email.yaml").read_text())
    (directory / "email.yaml").write_text(yaml.safe_dump(shipped | overrides))
    monkeypatch.setenv("INTAKE_HUB_MAIL_RECIPIENTS", f"{SERVED} @help.shop.example")
    monkeypatch.setenv("INTAKE_HUB_SMTP_PORT", "0")
    monkeypatch.setenv("INTAKE_HUB_HOME", str(settings.home))
    made: list[EmailConnector] = []
    create = EmailConnector.create.__func__  # type: ignore[attr-defined]

    def capture(cls: type[EmailConnector], config: Any, core: Any) -> EmailConnector:
        connector: EmailConnector = create(cls, config, core)
        made.append(connector)
        return connector

    monkeypatch.setitem(REGISTRY, "email", EmailConnector)
    monkeypatch.setattr(EmailConnector, "create", classmethod(capture))
    app = create_app(replace(settings, database_url=db_url, connectors_dir=directory))
    client = await aiohttp_client(app)
    [connector] = made
    return Mailer(client, connector, settings.home / "mail" / "unparsed")


SENDER = "小店客服 <service@shop.example>"


@pytest.fixture
async def relay() -> Relay:
    """The relay the hub sends through."""
    relay = await start_relay()
    yield relay  # type: ignore[misc]
    assert relay.server is not None
    relay.server.close()


@pytest.fixture
async def sending(make_mailer: MakeMailer, relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Mailer:
    """The service with outbound mail through the test's relay, retrying within a second."""
    monkeypatch.setattr(outbound, "BACKOFF_S", (0.2, 0.4))
    return await make_mailer(
        relay=relay.address, relay_security="none", mail_from=SENDER, outbound_poll_s=0.1
    )


async def ended(status: str = outboxes.SENT, **which: Any) -> MailOutbound:
    """The one outbound row (of those `which` selects) once it reached `status`.

    The sender records the outcome after the relay answered, so the test waits for it.
    """
    # Generous: on a loaded 2-core box a send can take seconds; a pass returns at once.
    for _ in range(400):
        rows = await MailOutbound.filter(**which)
        if len(rows) == 1 and rows[0].status == status:
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no single row reached {status}: {[r.status for r in rows]}")
