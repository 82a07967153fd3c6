"""The deploy files point at commands and settings that exist."""

from __future__ import annotations

import configparser
import re

from intake_hub.cli import parser
from tests.conftest import ROOT

SYSTEMD = ROOT / "deploy" / "systemd"


def test_systemd_unit_runs_real_subcommands() -> None:
    """Every intake-hub command the unit runs is one the CLI accepts."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(SYSTEMD / "intake-hub.service")
    service = unit["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        argv = service[key].split()
        assert argv[0].endswith("/intake-hub")
        parser().parse_args(argv[1:])
    assert service["KillSignal"] == "SIGTERM"


def test_env_example_names_only_known_settings() -> None:
    """The example environment file sets only variables the service reads."""
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(INTAKE_HUB_[A-Z_]+)`", readme))
    names = re.findall(r"^#?\s*(INTAKE_HUB_[A-Z_]+)=", (SYSTEMD / "env.example").read_text(), re.M)
    assert names and set(names) <= documented
