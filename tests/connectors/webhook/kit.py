"""The app webhook's kit for the connector contract suite, and signing helpers for its tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook  # type: ignore[import-untyped]

from intake_hub.connectors.webhook.normalize import to_envelope
from intake_hub.connectors.webhook.schemas import MessageCreated
from intake_hub.envelope import Envelope
from tests.connectors.contract import Kit, Probe

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24h"
GOLDEN_ID = "msg_2Kq7ZVt1n0Yb3XhQ"


def signed(
    body: bytes, msg_id: str, secret: str = SECRET, at: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed by the third-party `standardwebhooks`."""
    stamp = datetime.fromtimestamp(int(time.time() if at is None else at), tz=UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def golden() -> Iterator[tuple[Envelope, Mapping[str, Any]]]:
    """Each recorded app event, normalised, beside the fields expected of it."""
    for path in sorted(PAYLOADS.glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        event = MessageCreated.model_validate_json(path.read_bytes())
        env = to_envelope(
            event.data,
            instance="app",
            webhook_id=GOLDEN_ID,
            env_id=uuid.uuid4(),
            ticket="0K3M7Q2X9HT",
            received_at=datetime.now(UTC),
        )
        yield env, json.loads(path.with_suffix("").with_suffix(".expected.json").read_text())


KIT = Kit(
    type="webhook",
    yaml='type: webhook\nname: app\nsecrets: "${INTAKE_HUB_WEBHOOK_SECRET}"\n',
    identity="verified",
    probes=(
        Probe("POST", "/hooks/app", 401, {"type": "message.created"}),
        Probe("GET", "/hooks/app", 405),
    ),
    golden=golden,
    env={"INTAKE_HUB_WEBHOOK_SECRET": SECRET},
)
