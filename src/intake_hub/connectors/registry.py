"""Channel instances from `connectors/*.yaml`: an explicit registry by `type:`, no scanning.

Adding a channel is one package under `connectors/` and one line here; the app mounts
whatever this returns, and the contract suite (tests/connectors/test_contract.py) checks
every entry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from intake_hub.connectors.base import Connector, ConnectorConfig
from intake_hub.connectors.email.connector import EmailConnector
from intake_hub.connectors.web.connector import WebConnector
from intake_hub.connectors.webhook.connector import WebhookConnector
from intake_hub.connectors.wechat.connector import WeChatConnector

REGISTRY: dict[str, type[Connector]] = {
    c.type: c for c in (WebConnector, WebhookConnector, WeChatConnector, EmailConnector)
}

# `${VAR}` must be set; `${VAR:-default}` falls back when unset or empty, as in the shell.
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


class ConnectorConfigError(ValueError):
    """A connector file is wrong; the message names the file and what is wrong."""


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if default is not None:
                return env.get(name) or default
            if name not in env:
                raise ConnectorConfigError(f"{where}: environment variable {name} is not set")
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    return value


def load_connectors(
    directory: Path, env: Mapping[str, str] | None = None
) -> list[ConnectorConfig]:
    """Every channel instance configured in `directory`, validated; secrets from `${VARS}`."""
    env = os.environ if env is None else env
    configs: list[ConnectorConfig] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConnectorConfigError(f"{path}: {exc}") from None
        if not isinstance(raw, dict) or "type" not in raw:
            raise ConnectorConfigError(f"{path}: expected a mapping with a 'type:' key")
        kind = raw["type"]
        if kind not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise ConnectorConfigError(f"{path}: unknown connector type {kind!r} (known: {known})")
        try:
            configs.append(REGISTRY[kind].Config.model_validate(_expand(raw, env, str(path))))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConnectorConfigError(f"{path}: {problems}") from None
    return configs
