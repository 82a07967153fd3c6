"""Settings read once from `INTAKE_HUB_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


SECRET_MIN_LENGTH = 24
# The placeholders our docs and deploy files have ever shipped; compared case-insensitively.
PLACEHOLDER_PREFIXES = ("change-me", "changeme", "change_me")
GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def secret_problem(value: str) -> str | None:
    """Why `value` is too easy to guess for a secret, or None when it is not."""
    if value.strip().lower().startswith(PLACEHOLDER_PREFIXES):
        return "is a documented placeholder"
    if len(value) < SECRET_MIN_LENGTH:
        return f"is shorter than {SECRET_MIN_LENGTH} characters"
    return None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def _node_id(raw: str) -> int:
    # A StatefulSet pod name (`intake-hub-gateway-3`) gives each replica its own slot.
    tail = raw.rsplit("-", 1)[-1]
    if not tail.isdigit() or not 0 <= int(tail) < 1024:
        raise ConfigError(
            f"INTAKE_HUB_NODE_ID={raw!r} is neither 0-1023 nor a name ending in -<0-1023>"
        )
    return int(tail)


def _floats(env: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        values = tuple(float(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a comma-separated list of seconds") from None
    if any(v < 0 for v in values):
        raise ConfigError(f"{name}={raw!r} has a negative delay")
    return values


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name}={raw!r} is neither on nor off")


def _processes(env: Mapping[str, str], name: str) -> int:
    count = _int(env, name, os.cpu_count() or 1)
    if not 1 <= count <= 64:
        raise ConfigError(f"{name}={count} is not between 1 and 64")
    return count


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    nets = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            nets.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not an IP address or network") from None
    return tuple(nets)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment; secrets never printed."""

    home: Path = Path("var")
    database_url: str = ""
    amqp_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    smtp_port: int = 2525
    rules_dir: Path = Path("rules")
    connectors_dir: Path = Path("connectors")
    public_url: str = "http://127.0.0.1:8080"
    admin_token: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    node_id: int | None = None
    max_body_bytes: int = 1024 * 1024
    followup_window_s: int = 7 * 24 * 3600
    batch_size: int = 256
    concurrency: int = 512
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    spool_max: int = 100_000
    rate_limits: bool = True
    # Processes `serve` runs (each a whole embedded instance); `from_env` defaults to the cores.
    processes: int = 1
    # Reverse proxies whose X-Forwarded-For names the client (CIDRs); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # Where attachments are kept: None is files under HOME/attachments; `s3://bucket/prefix`.
    attachments_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        p = "INTAKE_HUB_"
        home = Path(env.get(p + "HOME") or "var")
        port = _int(env, p + "HTTP_PORT", 8080)
        host = env.get(p + "HTTP_HOST") or "127.0.0.1"
        node = env.get(p + "NODE_ID")
        return cls(
            home=home,
            database_url=env.get(p + "DATABASE_URL") or f"sqlite://{home / 'intake-hub.sqlite3'}",
            amqp_url=env.get(p + "AMQP_URL") or None,
            http_host=host,
            http_port=port,
            smtp_port=_int(env, p + "SMTP_PORT", 2525),
            rules_dir=Path(env.get(p + "RULES_DIR") or "rules"),
            connectors_dir=Path(env.get(p + "CONNECTORS_DIR") or "connectors"),
            public_url=(env.get(p + "PUBLIC_URL") or f"http://{host}:{port}").rstrip("/"),
            admin_token=env.get(p + "ADMIN_TOKEN") or None,
            secret_key=env.get(p + "SECRET_KEY") or None,
            node_id=_node_id(node) if node else None,
            max_body_bytes=_int(env, p + "MAX_BODY_BYTES", 1024 * 1024),
            followup_window_s=_int(env, p + "FOLLOWUP_WINDOW", 7 * 24 * 3600),
            batch_size=_int(env, p + "BATCH_SIZE", 256),
            concurrency=_int(env, p + "CONCURRENCY", 512),
            retry_delays=_floats(env, p + "RETRY_DELAYS", (1.0, 5.0, 30.0)),
            spool_max=_int(env, p + "SPOOL_MAX", 100_000),
            rate_limits=_switch(env, p + "RATE_LIMITS", True),
            processes=_processes(env, p + "PROCESSES"),
            trusted_proxies=_networks(env, p + "TRUSTED_PROXIES"),
            attachments_url=env.get(p + "ATTACHMENTS_URL") or None,
        )

    def check_secrets(self) -> None:
        """Refuse an admin token or secret key that is set but guessable; unset is allowed."""
        for name, value in (
            ("INTAKE_HUB_ADMIN_TOKEN", self.admin_token),
            ("INTAKE_HUB_SECRET_KEY", self.secret_key),
        ):
            problem = None if value is None else secret_problem(value)
            if problem:
                # Never the value itself: this goes to stderr and from there into logs.
                raise ConfigError(
                    f"{name} {problem}; set a random one ({GENERATE_HINT}) or unset it"
                )

    def resolved_secret(self) -> bytes:
        """The key that signs access codes: the env var, else one kept under HOME."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.home / "secret.key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32).encode()
        # O_EXCL: when two processes race, both end up with the winner's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
