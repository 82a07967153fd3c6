"""What classify, respond and route decided for one message and why, as plain JSON data.

Built from the envelope's enrichments only, so the record stored on a ticket says what
the pipeline actually did with the rules in force then, never what today's rules would do.
`rules explain` prints the same keys, plus the scores it can see while running the rules.
"""

from __future__ import annotations

from typing import Any

from intake_hub.envelope import Envelope, Labels, Reply, Route


def decision(labels: Labels | None, reply: Reply | None, route: Route | None) -> dict[str, Any]:
    """The rules version, labels, reply and route of one message as JSON-ready data."""
    return {
        "rules_version": labels.rules_version if labels is not None else None,
        "labels": labels.model_dump(mode="json") if labels is not None else None,
        "reply": reply.model_dump(mode="json") if reply is not None else None,
        "route": route.model_dump(mode="json") if route is not None else None,
    }


def of_envelope(env: Envelope) -> dict[str, Any] | None:
    """The decision record of an envelope, or None when no stage has enriched it."""
    if env.labels is None and env.reply is None and env.route is None:
        return None
    return decision(env.labels, env.reply, env.route)
