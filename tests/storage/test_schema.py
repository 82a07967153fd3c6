"""Column lists come from the models: types read off the fields, unknown names refused."""

from __future__ import annotations

import pytest

from intake_hub.storage.models import Message, Ticket
from intake_hub.storage.schema import columns


async def test_types_come_from_the_fields(database: str) -> None:
    """A foreign key column takes the type of the key it points at; JSON is jsonb."""
    assert columns(Message, "ticket_id", "text", "created_at") == (
        ("ticket_id", "uuid"),
        ("text", "text"),
        ("created_at", "timestamptz"),
    )
    assert columns(Ticket, "assignee_id", "tags") == (("assignee_id", "text"), ("tags", "jsonb"))


async def test_a_column_the_model_lacks_is_refused(database: str) -> None:
    """A name that is not a column of the table fails loudly, naming table and column."""
    with pytest.raises(LookupError, match="table ticket has no column 'colour'"):
        columns(Ticket, "id", "colour")
    with pytest.raises(LookupError, match="no column 'customer'"):
        columns(Ticket, "customer")
