"""The route stage's VIP, region/product-line rules, urgency and strategy, with a fake roster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from intake_hub.envelope import CustomerRef, Envelope, Extracted, Labels, Priority
from intake_hub.rules import RuleSet
from intake_hub.rules.routing import Match, RouteRule, Strategy, Team
from intake_hub.stages.router import route

MakeEnvelope = Callable[..., Envelope]


@dataclass
class Recorder:
    """A roster that records each request and answers with a fixed login."""

    answer: str | None = "agent-1"
    calls: list[tuple[str, tuple[str, ...], Priority, Strategy]] = field(default_factory=list)

    async def pick(
        self,
        team: str,
        skills: tuple[str, ...] = (),
        *,
        priority: Priority = "normal",
        strategy: Strategy = "least_loaded",
    ) -> str | None:
        """Record the request; answer with `answer`."""
        self.calls.append((team, skills, priority, strategy))
        return self.answer


def env_for(make_env: MakeEnvelope, category: str, **labels: object) -> Envelope:
    """An envelope classified as `category` with extra label fields."""
    return make_env("x", labels=Labels(category=category, **labels))  # type: ignore[arg-type]


async def test_vip_needs_senior_skill(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A VIP customer's exchange needs `returns` and `senior`, and the reason says so."""
    env = env_for(make_env, "return_exchange").model_copy(
        update={"customer": CustomerRef(key="c-1", tags=("vip",))}
    )
    roster = Recorder()
    out = await route(env, ruleset.routing, roster)
    assert roster.calls[0][:2] == ("aftersales", ("returns", "senior"))
    assert out.route is not None
    assert any("vip" in r and "senior" in r for r in out.route.reasons)


async def test_urgent_is_passed_to_roster(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """An urgent complaint asks the roster for an urgent pick and says it jumped the queue."""
    roster = Recorder()
    out = await route(env_for(make_env, "complaint", priority="urgent"), ruleset.routing, roster)
    assert roster.calls == [("complaints", (), "urgent", "least_loaded")]
    assert out.route is not None and "urgent" in out.route.reasons[-1]


async def test_round_robin_team(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """The shipped pack shares pre-sales questions out in turn."""
    roster = Recorder()
    out = await route(env_for(make_env, "presales"), ruleset.routing, roster)
    assert roster.calls[0][3] == "round_robin"
    assert out.route is not None and "next agent in turn" in out.route.reasons[-1]


async def test_region_and_product_rules(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A rule on carrier or tags changes the team and adds skills; the first match wins."""
    rules = ruleset.routing.model_copy(
        update={
            "teams": {**ruleset.routing.teams, "jd_desk": Team(name="京东专席")},
            "rules": (
                RouteRule(
                    name="jd",
                    when=Match(category="logistics", carrier="JD"),
                    team="jd_desk",
                    skills=("jd",),
                ),
                RouteRule(name="hk", when=Match(tags=("region_hk",)), skills=("cantonese",)),
                RouteRule(name="never", when=Match(tags=("region_hk",)), skills=("never",)),
            ),
        }
    )
    jd = env_for(
        make_env, "logistics", extracted=Extracted(tracking_numbers=("JD:JDX000123456789",))
    )
    roster = Recorder()
    out = await route(jd, rules, roster)
    assert roster.calls[0][:2] == ("jd_desk", ("jd",))
    assert out.route is not None and out.route.team == "jd_desk"
    assert any("rule 'jd'" in r for r in out.route.reasons)
    sf = env_for(make_env, "logistics", extracted=Extracted(tracking_numbers=("SF:SF1",)))
    await route(sf, rules, roster)
    assert roster.calls[1][:2] == ("logistics", ())
    hk = env_for(make_env, "quality").model_copy(
        update={"customer": CustomerRef(key="c", tags=("region_hk",))}
    )
    await route(hk, rules, roster)
    assert roster.calls[2][:2] == ("aftersales", ("quality", "cantonese"))


async def test_order_prefix_rule(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """An order-number prefix (a product line's shop) adds its skill."""
    rules = ruleset.routing.model_copy(
        update={
            "rules": (
                RouteRule(name="家电", when=Match(order_prefix=("88",)), skills=("appliances",)),
            )
        }
    )
    roster = Recorder()
    env = env_for(make_env, "repair", extracted=Extracted(order_numbers=("8812345678901",)))
    await route(env, rules, roster)
    assert roster.calls[0][1] == ("technical", "appliances")


async def test_nobody_fits_waits_in_queue(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """When the roster finds nobody, the ticket stays unassigned in the team queue."""
    out = await route(env_for(make_env, "refund"), ruleset.routing, Recorder(answer=None))
    assert out.route is not None
    assert (out.route.team, out.route.assignee) == ("finance", None)
    assert "team queue" in out.route.reasons[-1]
