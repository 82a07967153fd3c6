"""The route stage with an in-memory roster standing in for the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from intake_hub.access import Links
from intake_hub.envelope import Envelope, Labels, Priority
from intake_hub.rules import RuleSet
from intake_hub.rules.routing import Strategy
from intake_hub.stages.classifier import classify
from intake_hub.stages.responder import respond
from intake_hub.stages.router import Roster, route

MakeEnvelope = Callable[..., Envelope]


@dataclass
class Agent:
    """An agent as the fake roster knows them."""

    name: str
    team: str
    skills: frozenset[str] = frozenset()
    load: int = 0


@dataclass
class FakeRoster:
    """Picks the least-loaded agent with every skill, and remembers what it was asked."""

    agents: list[Agent] = field(default_factory=list)
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    asked: list[tuple[Priority, Strategy]] = field(default_factory=list)

    async def pick(
        self,
        team: str,
        skills: tuple[str, ...] = (),
        *,
        priority: Priority = "normal",
        strategy: Strategy = "least_loaded",
    ) -> str | None:
        """The least-loaded agent in `team` having all `skills`."""
        self.calls.append((team, skills))
        self.asked.append((priority, strategy))
        fit = [a for a in self.agents if a.team == team and set(skills) <= a.skills]
        if not fit:
            return None
        best = min(fit, key=lambda a: a.load)
        best.load += 1
        return best.name


def roster() -> FakeRoster:
    """A small shop: two after-sales agents, one logistics agent, one complaints lead."""
    return FakeRoster(
        [
            Agent("小李", "aftersales", frozenset({"returns", "quality"}), load=3),
            Agent("小张", "aftersales", frozenset({"returns"}), load=1),
            Agent("阿强", "logistics", load=0),
            Agent("王经理", "complaints", load=5),
        ]
    )


def labelled(make_env: MakeEnvelope, category: str) -> Envelope:
    """An envelope already classified as `category`."""
    return make_env("x", labels=Labels(category=category))


def test_fake_roster_is_a_roster() -> None:
    """The test roster satisfies the same protocol the database roster implements."""
    r: Roster = roster()
    assert r is not None


async def test_category_picks_team_and_least_loaded_agent(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """An exchange request goes to after-sales, to the agent with the fewest open tickets."""
    fake = roster()
    out = await route(labelled(make_env, "return_exchange"), ruleset.routing, fake)
    assert out.route is not None
    assert (out.route.team, out.route.assignee) == ("aftersales", "小张")
    assert fake.calls == [("aftersales", ("returns",))]
    assert len(out.route.reasons) == 2
    assert "return_exchange" in out.route.reasons[0]
    assert "小张" in out.route.reasons[1]


async def test_skills_narrow_the_choice(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A quality problem goes to the agent who has the quality skill, though busier."""
    out = await route(labelled(make_env, "quality"), ruleset.routing, roster())
    assert out.route is not None
    assert out.route.assignee == "小李"


async def test_no_free_agent_leaves_ticket_in_team_queue(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """When nobody in the team can take it, the ticket waits in the team queue unassigned."""
    out = await route(labelled(make_env, "invoice"), ruleset.routing, roster())
    assert out.route is not None
    assert (out.route.team, out.route.assignee) == ("finance", None)
    assert "queue" in out.route.reasons[-1]


async def test_unclassified_goes_to_fallback(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A message the classifier never saw still reaches the general team."""
    out = await route(make_env("hi"), ruleset.routing, roster())
    assert out.route is not None
    assert out.route.team == ruleset.routing.fallback
    assert "not classified" in out.route.reasons[0]


async def test_unrouted_category_goes_to_fallback(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A category routing.yaml does not mention goes to the fallback team, saying why."""
    rules = ruleset.routing.model_copy(update={"categories": {}})
    out = await route(labelled(make_env, "refund"), rules, roster())
    assert out.route is not None
    assert out.route.team == "general"
    assert "no team for category 'refund'" in out.route.reasons[0]


async def test_route_returns_a_copy(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """Routing leaves the incoming envelope and its labels as they were."""
    env = labelled(make_env, "logistics")
    out = await route(env, ruleset.routing, roster())
    assert env.route is None
    assert out.labels == env.labels


async def test_pipeline_examples(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """The three headline messages are classified, acknowledged and routed end to end."""
    links = Links("https://help.example.com", b"k")
    cases = [
        ("尺码不对，想换大一码，订单号 4102938475610", "aftersales", "小张", "zh"),
        ("where is my package? tracking says nothing for 5 days", "logistics", "阿强", "en"),
        ("我要投诉，再不处理就打12315", "complaints", "王经理", "zh"),
    ]
    for text, team, agent, lang in cases:
        env = await classify(make_env(text), ruleset.classifier)
        env = await respond(env, ruleset.replies, links)
        env = await route(env, ruleset.routing, roster())
        assert env.route is not None and env.reply is not None
        assert (env.route.team, env.route.assignee, env.reply.lang) == (team, agent, lang)
