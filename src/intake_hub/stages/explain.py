"""`intake-hub rules explain`: what the pipeline would do with one message, and why.

No database is needed: the route step uses a dry roster that names the agent it would
look for (the least-loaded online agent of the team with the skills) instead of a
person, so an operator can try rule edits on any machine.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from intake_hub.access import Links
from intake_hub.envelope import (
    CHANNELS,
    Channel,
    CustomerRef,
    Envelope,
    Labels,
    Priority,
    Reply,
    Route,
)
from intake_hub.rules.classifier import Hit
from intake_hub.rules.decision import decision
from intake_hub.rules.errors import RulesError
from intake_hub.rules.loader import RuleSet, load_rules
from intake_hub.rules.routing import Strategy
from intake_hub.stages.classifier import classify
from intake_hub.stages.responder import respond
from intake_hub.stages.router import route
from intake_hub.ticketno import encode

EXAMPLE_TICKET = encode(1 << 40)
# The status link in an explained reply is an example: it is signed with a throw-away key.
_EXAMPLE_SECRET = b"rules-explain-example"


class DryRoster:
    """A roster without a database: it describes the agent it would pick."""

    async def pick(
        self,
        team: str,
        skills: tuple[str, ...] = (),
        *,
        priority: Priority = "normal",
        strategy: Strategy = "least_loaded",
    ) -> str | None:
        """A description of the agent the roster would pick in `team` with `skills`."""
        needs = f" with skills {'+'.join(skills)}" if skills else ""
        who = (
            "next online agent in turn"
            if strategy == "round_robin"
            else "least-loaded online agent"
        )
        return f"<the {who} of team '{team}'{needs}>"


@dataclass(frozen=True)
class Explanation:
    """The classify, respond and route stages' output for one message, with their reasons."""

    text: str
    channel: str
    customer_tags: tuple[str, ...]
    rules_version: str
    hits: tuple[Hit, ...]
    scores: tuple[tuple[str, float], ...]
    phrases: tuple[str, ...]
    labels: Labels
    reply: Reply
    route: Route

    def as_dict(self) -> dict[str, Any]:
        """The explanation as plain JSON-ready data."""
        return {
            "text": self.text,
            "channel": self.channel,
            "customer_tags": list(self.customer_tags),
            # The same record persist keeps on each ticket (`rules/decision.py`).
            **decision(self.labels, self.reply, self.route),
            "scores": dict(self.scores),
            "phrases": list(self.phrases),
            "negated": {h.label: h.negated_by for h in self.hits if h.negated_by},
        }

    def render(self) -> str:
        """The explanation as text for a terminal."""
        lab = self.labels
        out = [f"rules version {self.rules_version}, channel {self.channel}"]
        out.append(f"category:   {lab.category} (confidence {lab.confidence:.2f})")
        out.append(f"  matched:  {', '.join(lab.matched) or '(nothing)'}")
        negated = [f"{h.label} (after '{h.negated_by}')" for h in self.hits if h.negated_by]
        if negated:
            out.append(f"  negated:  {', '.join(negated)}")
        for phrase in self.phrases:
            out.append(f"  phrase:   {phrase}")
        if self.scores:
            out.append("  scores:   " + ", ".join(f"{c} {s:g}" for c, s in self.scores))
        if lab.secondary:
            out.append(f"  also:     {', '.join(lab.secondary)}")
        if lab.tags:
            out.append(f"  tags:     {', '.join(lab.tags)}")
        out.append(f"priority:   {lab.priority}")
        out.extend(f"  - {reason}" for reason in lab.priority_reasons)
        ext = lab.extracted
        if ext is not None:
            for name, values in ext.model_dump().items():
                if values:
                    out.append(f"extracted:  {name}: {', '.join(values)}")
        out.append(f"reply ({self.reply.kind}, {self.reply.lang}):")
        out.extend(f"  | {line}" for line in self.reply.text.splitlines())
        out.append(f"route:      team {self.route.team}")
        out.extend(f"  - {reason}" for reason in self.route.reasons)
        return "\n".join(out)


async def explain(
    text: str,
    rules: RuleSet,
    channel: Channel = "web",
    customer_tags: Sequence[str] = (),
    links: Links | None = None,
) -> Explanation:
    """Run `text` through classify, respond and route with a dry roster, keeping every reason."""
    env = Envelope(
        id=uuid4(),
        channel=channel,
        source=f"{channel}/explain",
        external_id="explain",
        ticket=EXAMPLE_TICKET,
        customer=CustomerRef(key="explain", tags=tuple(customer_tags)),
        text=text,
        received_at=datetime.now(UTC),
    )
    links = links or Links("http://127.0.0.1:8080", _EXAMPLE_SECRET)
    env = await classify(env, rules.classifier, rules.version)
    env = await respond(env, rules.replies, links, faq=rules.faq)
    env = await route(env, rules.routing, DryRoster())
    assert env.labels is not None and env.reply is not None and env.route is not None
    hits = rules.classifier.find(text)
    scored = rules.classifier.score(list(hits), channel)
    return Explanation(
        text=text,
        channel=channel,
        customer_tags=tuple(customer_tags),
        rules_version=rules.version,
        hits=hits,
        scores=tuple((c, round(s, 2)) for c, s in scored.ranked(rules.classifier.order)),
        phrases=tuple(f"{' + '.join(p.all)} -> {p.category} +{p.weight:g}" for p in scored.phrases),
        labels=env.labels,
        reply=env.reply,
        route=env.route,
    )


def run(
    text: str,
    rules_dir: Path,
    channel: str = "web",
    customer_tags: Sequence[str] = (),
    as_json: bool = False,
    public_url: str = "http://127.0.0.1:8080",
) -> int:
    """The `rules explain` command: print the explanation; 2 when the rules are broken."""
    if channel not in CHANNELS:
        print(f"unknown channel '{channel}'; one of: {', '.join(CHANNELS)}", file=sys.stderr)
        return 2
    try:
        rules = load_rules(rules_dir)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 2
    links = Links(public_url, _EXAMPLE_SECRET)
    found = asyncio.run(explain(text, rules, channel, customer_tags, links))
    print(json.dumps(found.as_dict(), ensure_ascii=False, indent=2) if as_json else found.render())
    return 0
