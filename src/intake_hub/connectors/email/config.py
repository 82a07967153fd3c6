"""`connectors/email.yaml`: one mail intake instance, the addresses it serves; no I/O."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, field_validator

from intake_hub.connectors.base import ConnectorConfig

_MIB = 1024 * 1024
# `local@domain` or `@domain`: a whole domain is served.
_ADDRESS = re.compile(
    r"^([^@\s]+)?@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)


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
    # The domain the hub's own outbound Message-IDs will carry: such mail is our own.
    message_id_domain: str = ""

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

    @property
    def enabled(self) -> bool:
        """Whether this instance serves some address, i.e. should listen."""
        return bool(self.recipients)

    def serves(self, address: str) -> bool:
        """Whether mail for `address` is taken here (case-insensitive)."""
        address = address.strip().lower()
        domain = address.rpartition("@")[2]
        return address in self.recipients or f"@{domain}" in self.recipients
