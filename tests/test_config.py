"""Settings from the environment: defaults, parsing, and refusals that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake_hub.config import ConfigError, Settings


def test_embedded_defaults_need_no_environment() -> None:
    """With nothing set: SQLite under ./var, in-process bus, port 8080."""
    s = Settings.from_env({})
    assert s.home == Path("var")
    assert s.database_url == "sqlite://var/intake-hub.sqlite3"
    assert s.amqp_url is None and s.http_port == 8080 and s.node_id is None


@pytest.mark.parametrize(
    ("raw", "slot"), [("7", 7), ("intake-hub-gateway-3", 3), ("gw-0", 0), ("1023", 1023)]
)
def test_node_id_from_a_number_or_a_statefulset_pod_name(raw: str, slot: int) -> None:
    """INTAKE_HUB_NODE_ID takes a slot number or a pod name ending in its ordinal."""
    assert Settings.from_env({"INTAKE_HUB_NODE_ID": raw}).node_id == slot


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTAKE_HUB_NODE_ID", "gateway"),
        ("INTAKE_HUB_NODE_ID", "2048"),
        ("INTAKE_HUB_HTTP_PORT", "http"),
        ("INTAKE_HUB_RETRY_DELAYS", "1,soon"),
        ("INTAKE_HUB_RETRY_DELAYS", "1,-5"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    """A value the service cannot use is refused with the variable's name in the message."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    """Without INTAKE_HUB_SECRET_KEY, every process on one home reads the same generated key."""
    a = Settings(home=tmp_path).resolved_secret()
    b = Settings(home=tmp_path).resolved_secret()
    assert a == b and len(a) >= 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    shown = repr(Settings(home=tmp_path, secret_key="hunter2", admin_token="t0ken"))
    assert "hunter2" not in shown and "t0ken" not in shown
