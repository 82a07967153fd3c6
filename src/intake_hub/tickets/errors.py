"""Why the ticket service refuses: the API turns each into its 4xx answer."""

from __future__ import annotations


class NotAllowed(PermissionError):
    """The caller may not work this ticket (an agent of another team, or not the assignee)."""


class Conflict(RuntimeError):
    """The ticket changed under the request (another agent moved it at the same moment)."""


class UnknownAssignee(LookupError):
    """The login names no agent."""


class NotFound(LookupError):
    """No ticket with this number (or none this caller may see: the two look the same)."""


class KeyReused(ValueError):
    """An idempotency key came before with another body: answering it would be a guess."""
