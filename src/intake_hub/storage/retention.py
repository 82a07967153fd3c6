"""Forgetting rows that only have to outlive retries (deliveries, idempotency keys)."""

from __future__ import annotations

from datetime import datetime

from tortoise.models import Model


async def prune_before(
    model: type[Model],
    instance: str,
    before: datetime | int,
    batch: int = 5000,
    column: str = "created_at",
) -> int:
    """Delete `instance`'s rows whose `column` is before `before`, oldest first; how many.

    Small batches by the `(instance, column)` index keep each delete short, so several
    processes pruning at once only race to delete the same rows.
    """
    gone = 0
    while True:
        ids = (
            await model.filter(instance=instance, **{f"{column}__lt": before})
            .order_by(column)
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            return gone
        gone += await model.filter(id__in=list(ids)).delete()
        if len(ids) < batch:
            return gone
