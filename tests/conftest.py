"""Fixtures shared by the whole suite: settings on a throw-away home, a running app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from intake_hub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults on a fresh data directory, the shipped rules, fast retries."""
    return Settings(
        home=tmp_path / "home",
        database_url=f"sqlite://{tmp_path / 'home' / 'intake-hub.sqlite3'}",
        rules_dir=ROOT / "rules",
        connectors_dir=ROOT / "connectors",
        public_url="http://testserver",
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret",
        retry_delays=(0.05, 0.1),
        concurrency=32,
    )


@pytest.fixture
def make_settings(settings: Settings) -> Callable[..., Settings]:
    """Settings with some fields changed."""

    def make(**changes: Any) -> Settings:
        from dataclasses import replace

        return replace(settings, **changes)

    return make
