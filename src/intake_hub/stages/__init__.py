"""The pipeline, written once: each stage, what it consumes and what it produces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from intake_hub import topics
from intake_hub.envelope import Envelope

StageFn = Callable[[Envelope], Awaitable[Envelope | None]]


@dataclass(frozen=True)
class StageSpec:
    """One stage's place on the bus."""

    name: str
    consumes: tuple[str, ...]
    produces: str
    replies: bool = False  # its output answers connectors waiting on `reply_to`

    @property
    def queue(self) -> str:
        """The queue this stage consumes."""
        return topics.stage_queue(self.name)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("classify", (topics.RECEIVED_ANY,), "ticket.classified"),
    StageSpec("respond", ("ticket.classified",), "ticket.responded", replies=True),
    StageSpec("route", ("ticket.responded",), "ticket.routed"),
    StageSpec("persist", ("ticket.routed",), "ticket.stored"),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
