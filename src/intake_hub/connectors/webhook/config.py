"""`connectors/app.yaml` and its siblings: one app backend's webhook instance; no I/O."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import AnyHttpUrl, Field, PositiveFloat, field_validator, model_validator

from intake_hub.connectors.base import ConnectorConfig
from intake_hub.connectors.webhook.signing import secret_bytes

# Idempotency rows are keyed `webhook:<name>` in a 64-character column: the name keeps 56.
NAME = r"^[a-z0-9][a-z0-9_-]{0,55}$"
# A host name, or `*.` and a name: the name's subdomains (not the name itself).
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


class WebhookConfig(ConnectorConfig):
    """One app backend: its signing secrets, display name, limits and events endpoint.

    Empty `secrets` means the app is not configured: the instance is skipped at start,
    so the shipped file can reference an unset variable and `serve` still starts.
    """

    type: Literal["webhook"] = "webhook"
    name: str = Field(default="app", pattern=NAME)
    # One or several `whsec_` secrets separated by spaces: several during a rotation.
    secrets: str = Field(default="", repr=False)
    source_name: str = Field(default="App", min_length=1, max_length=100)
    tolerance_s: int = Field(default=300, ge=30, le=3600)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=4 * 1024 * 1024)
    # Events back to the app (ticket.created ...): its endpoint and its own secret.
    events_url: AnyHttpUrl | None = None
    events_secret: str = Field(default="", repr=False)
    # Days a delivered or dead event stays in the log (and can be redelivered).
    events_retention_days: int = Field(default=30, ge=1, le=3650)
    # Hosts the app's attachment URLs may name; empty: they stay links, nothing is fetched.
    attachment_hosts: list[str] = Field(default_factory=list, max_length=50)
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Only for a file server on the operator's own network, or tests on loopback.
    allow_private_addresses: bool = False
    allow_http: bool = False
    attachment_poll_s: float = Field(default=1.0, gt=0, le=60)
    attachment_retry_s: tuple[PositiveFloat, ...] = Field(
        default=(5, 30, 120, 600, 3600), min_length=1
    )

    @field_validator("attachment_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        hosts = [h.strip().lower().rstrip(".").strip("[]") for h in value]
        for host in hosts:
            if not HOST.match(host) and not _address(host):
                raise ValueError(f"{host!r} is not a host name or a `*.example.com` pattern")
        return hosts

    @field_validator("secrets", "events_secret")
    @classmethod
    def _whsec_shape(cls, value: str) -> str:
        for part in value.split():
            secret_bytes(part)
        return value

    @field_validator("events_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _events_need_secret(self) -> WebhookConfig:
        if self.events_url is not None and not self.events_secret.strip():
            raise ValueError("events_url needs events_secret: events are signed")
        return self

    @property
    def enabled(self) -> bool:
        """Whether this instance has a secret, i.e. should be mounted."""
        return bool(self.secrets.strip())

    @property
    def fetches(self) -> bool:
        """Whether the app's attachments are fetched (some host is allowed) or stay links."""
        return bool(self.attachment_hosts)

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The HMAC keys a request may be signed with, in the order configured."""
        return tuple(secret_bytes(part) for part in self.secrets.split())


def _address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
