"""A ticket's status as every layer speaks of it, and the open ticket a customer is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Status = Literal["received", "in_progress", "resolved", "closed"]
STATUSES: tuple[Status, ...] = ("received", "in_progress", "resolved", "closed")
OPEN_STATUSES: tuple[Status, ...] = ("received", "in_progress")
CLOSED_STATUSES: tuple[Status, ...] = ("resolved", "closed")


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """A ticket the customer still has open, as the status answer shows it."""

    number: str
    status: str
    updated_at: datetime
