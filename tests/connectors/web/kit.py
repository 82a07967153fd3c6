"""The web channel's kit for the connector contract suite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intake_hub.connectors.web.normalize import to_envelope
from intake_hub.connectors.web.schemas import WebMessageIn
from intake_hub.envelope import Envelope
from tests.connectors.contract import Kit, Probe

PAYLOADS = Path(__file__).parent / "payloads"


def golden() -> Iterator[tuple[Envelope, Mapping[str, Any]]]:
    """Each recorded form payload, normalised, beside the fields expected of it."""
    for path in sorted(PAYLOADS.glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        msg = WebMessageIn.model_validate_json(path.read_bytes())
        env = to_envelope(
            msg,
            env_id=uuid.uuid4(),
            ticket="0K3M7Q2X9HT",
            received_at=datetime.now(UTC),
            source="web/web",
        )
        yield env, json.loads(path.with_suffix("").with_suffix(".expected.json").read_text())


KIT = Kit(
    type="web",
    yaml="type: web\nname: web\n",
    identity="claimed",
    probes=(
        Probe("GET", "/", 200),
        Probe("POST", "/api/v1/web/messages", 422, {"name": "x"}),
        Probe("GET", "/tickets/0K3M7Q2X9HT?code=AAAAAAAA", 404),
        Probe("GET", "/api/v1/tickets/0K3M7Q2X9HT/status?code=AAAAAAAA", 404),
        Probe("POST", "/api/v1/tickets/0K3M7Q2X9HT/messages", 404, {"code": "x", "text": "y"}),
    ),
    golden=golden,
)
