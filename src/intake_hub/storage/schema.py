"""Column lists for set-based SQL, read from the tortoise models: one schema source.

The batched writers name the columns they fill; their types (for PostgreSQL's `unnest`
casts) and their existence come from the models, so a renamed or retyped field fails the
first write in the tests instead of drifting from a hand-typed list.
"""

from __future__ import annotations

import functools

from tortoise import fields
from tortoise.fields.base import Field
from tortoise.models import Model

from intake_hub.storage.sql import Column

# Most specific first: TextField and CharField share no base, JSONField is its own.
_PGTYPES: tuple[tuple[type[Field], str], ...] = (  # type: ignore[type-arg]
    (fields.UUIDField, "uuid"),
    (fields.JSONField, "jsonb"),
    (fields.DatetimeField, "timestamptz"),
    (fields.BooleanField, "bool"),
    (fields.BigIntField, "bigint"),
    (fields.IntField, "int"),
    (fields.CharField, "text"),
    (fields.TextField, "text"),
)


def _pgtype(field: Field) -> str:  # type: ignore[type-arg]
    for kind, pgtype in _PGTYPES:
        if isinstance(field, kind):
            return pgtype
    raise TypeError(f"no PostgreSQL type known for {type(field).__name__}")


@functools.cache
def columns(model: type[Model], *names: str) -> tuple[Column, ...]:
    """`(column, PostgreSQL type)` for each of `names` in `model`'s table.

    A foreign key is named by its column (`ticket_id`) and typed as the key it points at.
    Call it once the models are initialised (foreign keys resolve only then).
    """
    meta = model._meta
    out: list[Column] = []
    for name in names:
        field = meta.fields_map.get(name)
        if field is None and name.endswith("_id"):
            fk = meta.fields_map.get(name[: -len("_id")])
            related = getattr(fk, "related_model", None)
            field = related._meta.pk if related is not None else None
        if field is None or isinstance(field, fields.relational.RelationalField):
            raise LookupError(f"table {meta.db_table} has no column {name!r}")
        out.append((name, _pgtype(field)))
    return tuple(out)
