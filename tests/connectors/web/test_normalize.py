"""Web input to envelope: golden payload files, and no valid input that cannot be normalised."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake_hub.bus import codec
from intake_hub.connectors.web.normalize import to_envelope
from intake_hub.connectors.web.schemas import WebMessageIn

PAYLOADS = Path(__file__).parent / "payloads"
CASES = sorted(p for p in PAYLOADS.glob("*.json") if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("payload", CASES, ids=[p.stem for p in CASES])
def test_payload_normalises_to_the_expected_envelope(payload: Path) -> None:
    """Each recorded form payload gives exactly the envelope fields stored beside it."""
    msg = WebMessageIn.model_validate_json(payload.read_bytes())
    env = to_envelope(
        msg,
        env_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        received_at=datetime.now(UTC),
        source="web/web",
    )
    expected = json.loads(payload.with_suffix("").with_suffix(".expected.json").read_text())
    got = env.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    assert {k: got.get(k) for k in expected} == expected
    assert env.external_id == str(env.id)


@given(
    name=st.text(min_size=1, max_size=100),
    contact=st.text(min_size=3, max_size=200),
    text=st.text(min_size=1, max_size=300),
)
def test_any_accepted_form_input_makes_a_valid_envelope(name: str, contact: str, text: str) -> None:
    """Whatever passes request validation normalises to an envelope that crosses the bus."""
    try:
        msg = WebMessageIn(name=name, contact=contact, text=text)
    except ValueError:
        return
    env = to_envelope(
        msg,
        env_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        received_at=datetime.now(UTC),
        source="web/web",
    )
    assert codec.decode(codec.encode(env)) == env
    assert env.text and env.customer.key
