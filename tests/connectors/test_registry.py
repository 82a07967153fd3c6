"""Channel instance files: the shipped ones load, broken ones are named with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake_hub.connectors.registry import ConnectorConfigError, load_connectors
from intake_hub.connectors.web.connector import WebConfig
from tests.conftest import ROOT


def test_shipped_connectors_load() -> None:
    """The repository's connectors/ directory configures the web channel."""
    configs = load_connectors(ROOT / "connectors", env={})
    assert WebConfig(type="web", name="web") in configs


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("type: fax\n", "unknown connector type 'fax'"),
        ("name: web\n", "expected a mapping with a 'type:' key"),
        ("type: web\nname: [unclosed\n", "while parsing"),
        ("type: web\ncolour: red\n", "colour: Extra inputs are not permitted"),
        ("type: web\nname: ${INTAKE_HUB_NOT_SET}\n", "INTAKE_HUB_NOT_SET is not set"),
    ],
)
def test_broken_connector_file_is_named_with_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    """Each mistake in a connector file is reported with the file's path and what is wrong."""
    (tmp_path / "broken.yaml").write_text(content)
    with pytest.raises(ConnectorConfigError) as err:
        load_connectors(tmp_path, env={})
    assert str(tmp_path / "broken.yaml") in str(err.value)
    assert problem in str(err.value)


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    """A ${VAR} in a connector file is replaced by the variable's value."""
    (tmp_path / "site.yaml").write_text("type: web\nname: ${SHOP}\n")
    [config] = load_connectors(tmp_path, env={"SHOP": "flagship"})
    assert config == WebConfig(type="web", name="flagship")
