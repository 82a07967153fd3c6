"""How a batch ends: each message `Saved` somewhere, or a `LostRace` that starts it over."""

from __future__ import annotations

from dataclasses import dataclass


class LostRace(Exception):
    """Another writer stored part of this batch first; the batch must start over."""


@dataclass(frozen=True, slots=True)
class Saved:
    """Where a message ended up: its ticket's number, and whether this call stored it."""

    ticket: str
    created: bool
    duplicate: bool
