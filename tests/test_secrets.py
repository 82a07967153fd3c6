"""serve, gateway and worker refuse an admin token or secret key that could be guessed."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from intake_hub.cli import main
from intake_hub.config import SECRET_MIN_LENGTH, ConfigError, Settings
from tests.conftest import ROOT
from tests.served.conftest import run_refused, start_service

VARIABLES = ("INTAKE_HUB_ADMIN_TOKEN", "INTAKE_HUB_SECRET_KEY")
GOOD = "Jx4fQm8Zr2LkVt7NpW3sYb6HcD9gUe5A"  # 32 characters, as token_urlsafe(24) gives
SHORT = "Qz7shortButNot-24"  # 17 characters
PLACEHOLDERS = (
    "change-me",
    "CHANGE-ME",
    "CHANGE-ME-same-on-every-pod",
    "Change-Me-0123456789abcdef",
)
ROLES = ("serve", "gateway", "worker")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A fresh home, the shipped rules and connectors, neither secret set."""
    monkeypatch.setenv("INTAKE_HUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INTAKE_HUB_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("INTAKE_HUB_CONNECTORS_DIR", str(ROOT / "connectors"))
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _refused(role: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `intake-hub ROLE`, expect exit 2, and return what it wrote."""
    assert main([role]) == 2
    out = capsys.readouterr()
    return out.out + out.err


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", VARIABLES)
@pytest.mark.parametrize(
    ("value", "reason"),
    [(SHORT, f"shorter than {SECRET_MIN_LENGTH} characters")]
    + [(p, "placeholder") for p in PLACEHOLDERS],
)
def test_a_guessable_secret_is_refused_by_name_never_by_value(
    role: str,
    name: str,
    value: str,
    reason: str,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each command exits 2 naming the variable and the reason; the value is never printed."""
    if role != "serve":
        env.setenv("INTAKE_HUB_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
    for other in VARIABLES:
        env.setenv(other, GOOD)
    env.setenv(name, value)
    said = _refused(role, capsys)
    assert name in said and reason in said
    assert value not in said and value.lower() not in said.lower()
    assert GOOD not in said
    assert all(other not in said for other in VARIABLES if other != name)


def test_the_real_command_exits_2_on_stderr(tmp_path: Path) -> None:
    """`python -m intake_hub.cli serve` with a placeholder token exits 2, the reason on stderr."""
    environ = os.environ | {
        "INTAKE_HUB_HOME": str(tmp_path / "home"),
        "INTAKE_HUB_ADMIN_TOKEN": "CHANGE-ME",
        "INTAKE_HUB_SECRET_KEY": "",
    }
    done = run_refused(environ)
    assert done.returncode == 2
    assert "INTAKE_HUB_ADMIN_TOKEN is a documented placeholder" in done.stderr
    assert "CHANGE-ME" not in done.stderr + done.stdout
    assert not (tmp_path / "home").exists(), "refused before touching its home"


@pytest.mark.parametrize(
    ("admin_token", "secret_key"),
    [(None, None), ("a" * SECRET_MIN_LENGTH, None), (None, GOOD), (GOOD, GOOD)],
)
def test_unset_or_long_random_secrets_pass(admin_token: str | None, secret_key: str | None) -> None:
    """Unset is allowed, and so is any non-placeholder value of 24 characters or more."""
    Settings(admin_token=admin_token, secret_key=secret_key).check_secrets()


def test_empty_variables_count_as_unset() -> None:
    """An empty variable (as the env.example files ship) is unset, not a short secret."""
    settings = Settings.from_env({name: "" for name in VARIABLES})
    assert settings.admin_token is None and settings.secret_key is None
    settings.check_secrets()


def test_one_character_short_is_refused() -> None:
    """23 characters are one too few."""
    with pytest.raises(ConfigError, match="INTAKE_HUB_SECRET_KEY is shorter"):
        Settings(secret_key="b" * (SECRET_MIN_LENGTH - 1)).check_secrets()


def test_a_good_token_and_key_start_the_service(tmp_path: Path) -> None:
    """`serve` with generated-looking secrets starts, and the admin token is accepted."""
    home = tmp_path / "home"
    home.mkdir()
    served = start_service(home, INTAKE_HUB_ADMIN_TOKEN=GOOD, INTAKE_HUB_SECRET_KEY=GOOD[::-1])
    try:
        req = urllib.request.Request(
            served.url + "/api/v1/tickets", headers={"Authorization": f"Bearer {GOOD}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
    finally:
        assert served.stop() == 0
