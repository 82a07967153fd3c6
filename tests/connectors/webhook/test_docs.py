"""The integration guide stays true: its schemas are the models', its vector verifies."""

from __future__ import annotations

import json
import re
from pathlib import Path

from intake_hub.connectors.webhook.schemas import EVENTS

DOC = Path(__file__).resolve().parents[3] / "docs" / "connectors" / "app_webhook.md"


def test_the_guide_shows_each_event_types_current_schema() -> None:
    """Every event type has a section whose JSON Schema equals the model's."""
    text = DOC.read_text(encoding="utf-8")
    for kind, model in EVENTS.items():
        section = text.split(f"### `{kind}`\n\n```json\n", 2)[-1]
        block = section.split("\n```", 1)[0]
        assert json.loads(block) == model.model_json_schema(), kind


def test_the_guide_documents_every_error_it_can_get() -> None:
    """Each status the route answers with is in the guide's tables."""
    text = DOC.read_text(encoding="utf-8")
    for status in ("200", "202", "400", "401", "409", "413", "422"):
        assert re.search(rf"\| `{status}`", text), status
