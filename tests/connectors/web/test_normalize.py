"""Web input to envelope: golden payload files, and no valid input that cannot be normalised."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from intake_hub.bus import codec
from intake_hub.connectors.web.normalize import to_envelope
from intake_hub.connectors.web.schemas import WebMessageIn
from tests.connectors.web.kit import golden


def test_form_message_is_its_own_external_id() -> None:
    """A web message has no provider id: its envelope id stands in, so a redelivery dedupes.

    The golden pairs themselves run in the connector contract suite (web/kit.py).
    """
    for env, _ in golden():
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
