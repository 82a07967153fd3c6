"""The email instance's configuration: recipients, disabled when empty, the shipped file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from intake_hub.connectors.email.config import EmailConfig
from intake_hub.connectors.registry import load_connectors

ROOT = Path(__file__).resolve().parents[3]


def test_recipients_split_and_serve_case_insensitively() -> None:
    """A YAML string of addresses and `@domain` patterns; matching ignores case."""
    config = EmailConfig(name="email", recipients="Service@Shop.example, @help.shop.example")
    assert config.recipients == ("service@shop.example", "@help.shop.example")
    assert config.serves("SERVICE@shop.example")
    assert config.serves("anyone@help.shop.example")
    assert not config.serves("other@shop.example")
    assert not config.serves("x@sub.help.shop.example")


def test_a_malformed_recipient_is_refused() -> None:
    """Something that is neither an address nor a pattern fails validation."""
    with pytest.raises(ValidationError):
        EmailConfig(name="email", recipients="not an address")


def test_the_shipped_file_is_off_until_recipients_are_set(tmp_path: Path) -> None:
    """Without INTAKE_HUB_MAIL_RECIPIENTS the instance is disabled; with it, it listens."""
    (tmp_path / "email.yaml").write_text((ROOT / "connectors" / "email.yaml").read_text())
    [off] = load_connectors(tmp_path, env={})
    assert not off.enabled
    [on] = load_connectors(
        tmp_path,
        env={"INTAKE_HUB_MAIL_RECIPIENTS": "service@shop.example", "INTAKE_HUB_HOME": "/srv/hub"},
    )
    assert isinstance(on, EmailConfig) and on.enabled
    assert (on.listen_host, on.listen_port) == ("127.0.0.1", 2525)
    assert on.unparsed_dir == Path("/srv/hub/mail/unparsed")
