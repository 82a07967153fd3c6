"""Real databases for the storage tests: SQLite in tmp_path and a throw-away PostgreSQL DB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intake_hub.envelope import CustomerRef, Envelope, Identity, Labels, Reply, Route
from intake_hub.storage import db
from intake_hub.ticketno import TicketNumbers


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[str]:
    """The models connected to a migrated database; closed after the test."""
    await db.open_db(db_url)
    try:
        yield db_url
    finally:
        await db.close_db()


@pytest.fixture
def numbers(tmp_path: Path) -> Iterator[TicketNumbers]:
    """A ticket-number issuer like the one at the edge."""
    issuer = TicketNumbers(node=7)
    yield issuer
    issuer.close()


EnvFactory = Callable[..., Envelope]


@pytest.fixture
def make_env(numbers: TicketNumbers) -> EnvFactory:
    """Build an envelope as it reaches persist: classified, answered and routed.

    Its customer is verified (a WeChat openid) unless `identity="claimed"` is asked for.
    """

    def make(
        text: str = "我的快递三天了还没到",
        *,
        customer: str = "openid-1",
        channel: str = "wechat",
        name: str | None = "王女士",
        received_at: datetime | None = None,
        identity: Identity = "verified",
        **changes: Any,
    ) -> Envelope:
        fields: dict[str, Any] = {
            "id": uuid.uuid4(),
            "channel": channel,
            "source": f"{channel}/test",
            "external_id": uuid.uuid4().hex,
            "ticket": numbers.next(),
            "customer": CustomerRef(key=customer, name=name, identity=identity),
            "text": text,
            "received_at": received_at or datetime.now(UTC),
            "labels": Labels(category="logistics", priority="normal", tags=("物流延迟",)),
            "reply": Reply(kind="ack", text="已收到，我们会尽快处理。"),
            "route": Route(team="aftersales", reasons=("category logistics",)),
        }
        fields.update(changes)
        return Envelope(**fields)

    return make
