"""What a channel brings to the connector contract suite (test_contract.py): one kit each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from intake_hub.envelope import Envelope, Identity

Client = TestClient  # type: ignore[type-arg]


@dataclass(frozen=True)
class Probe:
    """One request the mounted routes must answer as stated (never 404 for a missing route)."""

    method: str
    path: str
    status: int
    body: Any = None


@dataclass(frozen=True)
class Kit:
    """A channel's instance file, how to poke it, its golden pairs and its way out."""

    type: str
    yaml: str
    identity: Identity  # what the instance in `yaml` vouches for
    probes: tuple[Probe, ...]
    # (the envelope a recorded payload normalises to, the fields expected of it)
    golden: Callable[[], Iterable[tuple[Envelope, Mapping[str, Any]]]]
    env: Mapping[str, str] = field(default_factory=dict)
    # Offers one delivery twice through the connector's outbound port on a running app
    # and returns how many messages reached the (fake) provider; None: no way out.
    deliver_twice: Callable[[Client], Awaitable[int]] | None = None
