"""Fixtures for the stage tests: the shipped rules and an envelope builder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from intake_hub.envelope import CustomerRef, Envelope
from intake_hub.rules import RuleSet, load_rules
from intake_hub.ticketno import encode

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
TICKET = encode((3_000_000 << 25) | (5 << 15) | 42)


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    """The rules shipped in the repository's rules/ directory."""
    return load_rules(RULES_DIR)


@pytest.fixture
def make_env() -> Callable[..., Envelope]:
    """Build a web-channel envelope around a verified customer's text (`customer=` to change)."""

    def build(text: str, subject: str | None = None, **update: object) -> Envelope:
        env = Envelope(
            id=uuid4(),
            channel="web",
            source="web/web",
            external_id=str(uuid4()),
            ticket=TICKET,
            customer=CustomerRef(key="c-1", name="王女士", identity="verified"),
            text=text,
            subject=subject,
            received_at=datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
        )
        return env.model_copy(update=update) if update else env

    return build
