"""Web idempotency keys are forgotten once no retry can carry them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intake_hub.storage.models import WebIdempotency
from intake_hub.storage.webkeys import Claim, WebKeys


async def test_old_keys_are_pruned_and_recent_ones_kept(database: str) -> None:
    """Pruning drops the instance's keys taken before the cut-off, and nothing else."""
    keys = WebKeys()
    for instance, key in (("web", "old"), ("web", "new"), ("shop", "old")):
        await keys.claim(instance, key, Claim(ticket="0K3M7Q2X9HT", body_hash="h"))
    day_ago = datetime.now(UTC) - timedelta(days=2)
    await WebIdempotency.filter(idem_key="old").update(created_at=day_ago)
    assert await keys.prune("web", datetime.now(UTC) - timedelta(days=1)) == 1
    left = await WebIdempotency.all().order_by("instance").values_list("instance", "idem_key")
    assert [tuple(r) for r in left] == [("shop", "old"), ("web", "new")]
