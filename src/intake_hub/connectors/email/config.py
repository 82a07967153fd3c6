"""`connectors/email.yaml`: one mail intake instance, the addresses it serves; no I/O."""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator

from intake_hub.connectors.base import ConnectorConfig

_MIB = 1024 * 1024
# `local@domain` or `@domain`: a whole domain is served.
_ADDRESS = re.compile(
    r"^([^@\s]+)?@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    return host.strip("[]"), int(port)


class ImapConfig(BaseModel):
    """A mailbox read over IMAP, for a shop whose mail cannot be pointed at the listener."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # host or host:port (993 with `tls`, else 143).
    server: str = Field(min_length=1)
    # tls: implicit TLS (993); starttls: upgrade on 143; none: loopback tests only.
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1)
    password: str = Field(min_length=1, repr=False)
    mailbox: str = "INBOX"
    # On the very first start: `new` takes only mail arriving from then on (years of old
    # mail would each become a ticket and get an acknowledgement); `all` takes it all.
    start_at: Literal["new", "all"] = "new"
    # Seconds between polls when the server has no IDLE, and the longest an IDLE lasts.
    poll_s: PositiveFloat = 60.0
    idle_s: float = Field(default=25 * 60, gt=0, lt=29 * 60)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the server."""
        return _host_port(self.server, 993 if self.security == "tls" else 143)


class EmailConfig(ConnectorConfig):
    """The addresses an SMTP listener takes mail for, its port and its session limits.

    Empty `recipients` means the instance serves nobody: it is skipped at start, so the
    shipped file can reference an unset variable and `serve` still starts.
    """

    type: Literal["email"] = "email"
    name: str = Field(default="email", pattern=r"^[a-z0-9][a-z0-9_-]{0,55}$")
    # Addresses and `@domain` patterns, separated by spaces or commas in the YAML string.
    recipients: tuple[str, ...] = ()
    listen_host: str = "127.0.0.1"
    # 0 picks a free port (tests read it back from the running listener).
    listen_port: int = Field(default=2525, ge=0, le=65535)
    max_message_bytes: int = Field(default=25 * _MIB, ge=1024, le=100 * _MIB)
    max_recipients: int = Field(default=20, ge=1, le=1000)
    # Seconds a client may stay silent before the session is closed.
    timeout_s: PositiveFloat = 60.0
    # Seconds one session may last at all, and sessions open at once (421 past it).
    max_session_s: PositiveFloat = 600.0
    max_sessions: int = Field(default=100, ge=1, le=10000)
    # Where mail that cannot be parsed is kept, to be replayed (`intake-hub mail replay`).
    unparsed_dir: Path = Path("var/mail/unparsed")
    # Outbound: the relay (host:port) and the sender; unset relay = replies on the status
    # page only. `auto` upgrades with STARTTLS when the relay offers it.
    relay: str = ""
    relay_security: Literal["auto", "starttls", "tls", "none"] = "auto"
    relay_username: str = ""
    relay_password: str = Field(default="", repr=False)
    mail_from: str = ""
    # The domain of the hub's own Message-IDs (default: mail_from's); such mail is our own.
    message_id_domain: str = ""
    outbound_poll_s: float = Field(default=1.0, gt=0, le=60)
    # A mailbox to read as well as (or instead of) the listener.
    imap: ImapConfig | None = None

    @field_validator("recipients", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p for p in re.split(r"[\s,]+", value) if p)
        return value

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        found = tuple(v.strip().lower() for v in value)
        for address in found:
            if not _ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an address or an `@domain` pattern")
        return found

    @field_validator("relay")
    @classmethod
    def _relay(cls, value: str) -> str:
        if value:
            _host_port(value, 25)
        return value

    @field_validator("mail_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        if value and "@" not in parseaddr(value)[1]:
            raise ValueError(f"{value!r} is not an address (`Name <local@domain>` or bare)")
        return value

    @property
    def enabled(self) -> bool:
        """Whether this instance takes mail at all: addresses to listen for, or a mailbox."""
        return bool(self.recipients) or self.imap is not None

    @property
    def relay_address(self) -> tuple[str, int] | None:
        """(host, port) of the outbound relay (port 25 unless given), None when unset."""
        return _host_port(self.relay, 25) if self.relay else None

    @property
    def sends(self) -> bool:
        """Whether replies go out by mail: a relay and a sender are both set."""
        return bool(self.relay and self.mail_from)

    @property
    def id_domain(self) -> str:
        """The domain of the hub's Message-IDs: `message_id_domain`, else the sender's."""
        if self.message_id_domain:
            return self.message_id_domain.lower()
        return parseaddr(self.mail_from)[1].rpartition("@")[2].lower()

    def serves(self, address: str) -> bool:
        """Whether mail for `address` is taken here (case-insensitive)."""
        address = address.strip().lower()
        domain = address.rpartition("@")[2]
        return address in self.recipients or f"@{domain}" in self.recipients
