"""Refused: why an upload is not taken."""

from __future__ import annotations

from typing import Literal

Reason = Literal["too_large", "type", "corrupt", "empty"]


class Refused(ValueError):
    """An upload the hub will not store; `reason` is for code, str(exc) for people."""

    def __init__(self, reason: Reason, message: str) -> None:
        """Refuse for `reason`, explained in English by `message`."""
        super().__init__(message)
        self.reason: Reason = reason
