"""The app webhook's instance file: secrets, rotation, the disabled state, events endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from intake_hub.connectors.registry import ConnectorConfigError, load_connectors
from intake_hub.connectors.webhook.config import WebhookConfig
from intake_hub.connectors.webhook.signing import secret_bytes
from tests.connectors.webhook.kit import OTHER_SECRET, SECRET

SHIPPED = Path(__file__).resolve().parents[3] / "connectors"


def _shipped(env: dict[str, str]) -> WebhookConfig:
    [config] = [c for c in load_connectors(SHIPPED, env) if c.type == "webhook"]
    assert isinstance(config, WebhookConfig)
    return config


def test_the_shipped_instance_is_disabled_without_a_secret() -> None:
    """`app.yaml` with INTAKE_HUB_WEBHOOK_SECRET unset loads, but is not mounted."""
    config = _shipped({})
    assert (config.name, config.enabled, config.events_url) == ("app", False, None)


def test_the_shipped_instance_takes_rotating_secrets_and_an_events_endpoint() -> None:
    """Two secrets separated by a space are both keys; the events URL and secret are kept."""
    config = _shipped(
        {
            "INTAKE_HUB_WEBHOOK_SECRET": f"{SECRET} {OTHER_SECRET}",
            "INTAKE_HUB_APP_EVENTS_URL": "https://app.example.com/hooks/intake-hub",
            "INTAKE_HUB_APP_EVENTS_SECRET": OTHER_SECRET,
        }
    )
    assert config.enabled
    assert config.keys == (secret_bytes(SECRET), secret_bytes(OTHER_SECRET))
    assert str(config.events_url) == "https://app.example.com/hooks/intake-hub"
    assert SECRET not in repr(config)


def test_a_bad_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A secret that is not base64 fails the load naming the field, not the value."""
    (tmp_path / "app.yaml").write_text("type: webhook\nname: app\nsecrets: whsec_s3cr3t!!\n")
    with pytest.raises(ConnectorConfigError) as caught:
        load_connectors(tmp_path, {})
    assert "secrets" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_events_need_their_own_secret_and_names_are_bounded() -> None:
    """An events URL without a secret, or an over-long name, is refused."""
    with pytest.raises(ValidationError):
        WebhookConfig(secrets=SECRET, events_url="https://app.example.com/e")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WebhookConfig(name="a" * 57, secrets=SECRET)
