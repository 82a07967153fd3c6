"""The respond stage's reply kinds and loop guards, with injected fakes for the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from intake_hub.access import Links
from intake_hub.envelope import CustomerRef, Envelope, Labels, Proof
from intake_hub.rules import RuleSet
from intake_hub.rules.faq import FaqEntry, FaqIndex, FaqSpec
from intake_hub.rules.replies import QuietHours, Texts
from intake_hub.stages.responder import ReplyGuard, TicketLookup, respond
from intake_hub.status import OpenTicket
from intake_hub.ticketno import encode, pretty

MakeEnvelope = Callable[..., Envelope]
LINKS = Links("https://help.example.com/", b"test-secret")
OTHER = encode((3_000_000 << 25) | (5 << 15) | 7)
NOW = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


@dataclass
class FakeLookup:
    """Open tickets per (channel, customer key), and the questions asked."""

    tickets: dict[tuple[str, str], list[OpenTicket]] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def open_tickets(self, channel: str, customer_key: str) -> Sequence[OpenTicket]:
        """The stored open tickets of this customer on this channel."""
        self.asked.append((channel, customer_key))
        return self.tickets.get((channel, customer_key), [])


@dataclass
class FakeGuard:
    """Counts replies per (channel, key) in memory, like the store's counter."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    async def take(
        self, channel: str, customer_key: str, *, limit: int, window_minutes: int, now: datetime
    ) -> bool:
        """Count one reply and say whether it stays within `limit`."""
        key = (channel, customer_key)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key] <= limit


def test_fakes_satisfy_protocols() -> None:
    """The fakes implement the same protocols the database classes do."""
    lookup: TicketLookup = FakeLookup()
    guard: ReplyGuard = FakeGuard()
    assert lookup is not None and guard is not None


async def test_where_is_my_ticket_gets_live_status(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """ "我的工单进度" lists the customer's open tickets on the channel with their status."""
    updated = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    lookup = FakeLookup({("web", "c-1"): [OpenTicket(OTHER, "in_progress", updated)]})
    env = make_env("请问我的工单进度怎么样了")
    out = await respond(env, ruleset.replies, LINKS, tickets=lookup)
    assert out.reply is not None
    assert out.reply.kind == "status"
    assert pretty(OTHER) in out.reply.text
    assert "处理中" in out.reply.text
    assert "2025-06-01 10:00" in out.reply.text  # shown in China time
    assert LINKS.status_url(OTHER) in out.reply.text
    assert lookup.asked == [("web", "c-1")]


async def test_claimed_sender_is_never_listed_tickets(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """A claimed contact asking for progress gets its own acknowledgement, not the list."""
    lookup = FakeLookup({("web", "c-1"): [OpenTicket(OTHER, "in_progress", NOW)]})
    claimed = CustomerRef(key="c-1", name="王女士")
    out = await respond(
        make_env("我的工单进度怎么样了", customer=claimed), ruleset.replies, LINKS, tickets=lookup
    )
    assert out.reply is not None and out.reply.kind == "ack"
    assert pretty(OTHER) not in out.reply.text and OTHER not in out.reply.text


async def test_proven_follow_up_is_not_acknowledged_again(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """A reply from the status page gets no second acknowledgement; an FAQ still answers."""
    proof = Proof(kind="access_code", ticket=OTHER)
    out = await respond(make_env("补充：划痕在底部", proof=proof), ruleset.replies, LINKS)
    assert out.reply is not None and out.reply.kind == "none"
    faq = await respond(
        make_env("什么时候发货", proof=proof), ruleset.replies, LINKS, faq=ruleset.faq
    )
    assert faq.reply is not None and faq.reply.kind == "faq"


async def test_status_in_english(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """ "where is my ticket" is answered in English with the English status name."""
    lookup = FakeLookup({("web", "c-1"): [OpenTicket(OTHER, "received", NOW)]})
    out = await respond(make_env("Hi, where is my ticket?"), ruleset.replies, LINKS, tickets=lookup)
    assert out.reply is not None
    assert (out.reply.kind, out.reply.lang) == ("status", "en")
    assert "1 open ticket" in out.reply.text and "received" in out.reply.text


async def test_status_without_open_tickets_falls_back_to_ack(
    ruleset: RuleSet, make_env: MakeEnvelope
) -> None:
    """With no open ticket to report, the customer still gets the acknowledgement."""
    out = await respond(make_env("查工单"), ruleset.replies, LINKS, tickets=FakeLookup())
    assert out.reply is not None
    assert out.reply.kind == "ack"
    assert pretty(make_env("x").ticket) in out.reply.text


async def test_faq_answer_is_marked_automatic(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A question close to a knowledge-base variant gets its answer and the follow-up line."""
    env = make_env("请问什么时候发货？")
    out = await respond(env, ruleset.replies, LINKS, faq=ruleset.faq)
    assert out.reply is not None
    assert out.reply.kind == "faq"
    assert "48 小时" in out.reply.text
    assert "这个回答解决您的问题了吗" in out.reply.text
    assert pretty(env.ticket) in out.reply.text


async def test_faq_tolerates_typos_in_english(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A misspelt English question still reaches its answer, in English."""
    out = await respond(
        make_env("how long does shiping take"), ruleset.replies, LINKS, faq=ruleset.faq
    )
    assert out.reply is not None
    assert (out.reply.kind, out.reply.lang) == ("faq", "en")
    assert "Did this answer your question?" in out.reply.text


async def test_unrelated_message_is_not_an_faq(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A message below the threshold gets the acknowledgement, not a guessed answer."""
    out = await respond(
        make_env("尺码不对，想换大一码，订单号 4102938475610"),
        ruleset.replies,
        LINKS,
        faq=ruleset.faq,
    )
    assert out.reply is not None
    assert out.reply.kind == "ack"


async def test_faq_threshold_is_configurable(make_env: MakeEnvelope, ruleset: RuleSet) -> None:
    """Raising the threshold to 100 leaves only exact questions answered."""
    entry = FaqEntry(
        id="coupon", question="优惠券怎么用", answer=Texts(zh="结算页选择即可", en="At checkout")
    )
    strict = FaqIndex(FaqSpec(threshold=100, entries=(entry,)))
    assert strict.match("优惠券怎么用") is not None
    assert strict.match("优惠卷怎么用啊") is None
    loose = FaqIndex(FaqSpec(threshold=70, entries=(entry,)))
    assert loose.match("优惠卷怎么用啊") is not None


async def test_category_and_channel_templates(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A complaint gets the complaint acknowledgement; other categories the default one."""
    complaint = make_env("我要投诉", labels=Labels(category="complaint"))
    out = await respond(complaint, ruleset.replies, LINKS)
    assert out.reply is not None and "投诉已登记" in out.reply.text
    assert pretty(complaint.ticket) in out.reply.text
    other = make_env("我要投诉", labels=Labels(category="logistics"))
    out = await respond(other, ruleset.replies, LINKS)
    assert out.reply is not None and "投诉已登记" not in out.reply.text
    rules = ruleset.replies
    channel_only = rules.templates.ack_overrides[0].model_copy(
        update={"category": None, "channel": "wechat", "zh": "微信 {ticket} {status_url}"}
    )
    tuned = rules.model_copy(
        update={"templates": rules.templates.model_copy(update={"ack_overrides": (channel_only,)})}
    )
    on_wechat = await respond(make_env("你好", channel="wechat"), tuned, LINKS)
    on_web = await respond(make_env("你好"), tuned, LINKS)
    assert on_wechat.reply is not None and on_wechat.reply.text.startswith("微信 ")
    assert on_web.reply is not None and not on_web.reply.text.startswith("微信 ")


async def test_quiet_hours_note(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """At 23:30 China time the reply says people are offline; at 10:00 it does not."""
    night = make_env("你好", received_at=datetime(2025, 6, 1, 15, 30, tzinfo=UTC))
    day = make_env("你好", received_at=datetime(2025, 6, 1, 2, 0, tzinfo=UTC))
    out_night = await respond(night, ruleset.replies, LINKS)
    out_day = await respond(day, ruleset.replies, LINKS)
    assert out_night.reply is not None and "非工作时间" in out_night.reply.text
    assert out_day.reply is not None and "非工作时间" not in out_day.reply.text


def test_quiet_hours_span() -> None:
    """A span past midnight wraps; a daytime span does not."""
    text = Texts(zh="休息", en="closed")
    night = QuietHours(start=time(22), end=time(8), text=text)
    assert night.covers(time(23)) and night.covers(time(7, 59))
    assert not night.covers(time(8)) and not night.covers(time(21, 59))
    lunch = QuietHours(start=time(12), end=time(13), text=text)
    assert lunch.covers(time(12, 30)) and not lunch.covers(time(13))


async def test_no_reply_to_automatic_senders(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """An envelope a connector marked automatic gets no reply and uses no counter slot."""
    guard = FakeGuard()
    env = make_env("Out of office", automatic=True)
    out = await respond(env, ruleset.replies, LINKS, guard=guard, faq=ruleset.faq)
    assert out.reply is not None
    assert out.reply.kind == "none"
    assert "automatic" in out.reply.text
    assert guard.counts == {}


async def test_cap_per_customer(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """The fourth automatic reply to one customer in the window is withheld; others go on."""
    guard = FakeGuard()
    kinds = []
    for _ in range(4):
        out = await respond(make_env("你好"), ruleset.replies, LINKS, guard=guard, now=NOW)
        assert out.reply is not None
        kinds.append(out.reply.kind)
    assert kinds == ["ack", "ack", "ack", "none"]
    someone_else = make_env("你好", customer=CustomerRef(key="c-2"))
    out = await respond(someone_else, ruleset.replies, LINKS, guard=guard, now=NOW)
    assert out.reply is not None and out.reply.kind == "ack"


async def test_exactly_one_reply(ruleset: RuleSet, make_env: MakeEnvelope) -> None:
    """A status question that also matches an FAQ still gets one reply, the status one."""
    lookup = FakeLookup({("web", "c-1"): [OpenTicket(OTHER, "received", NOW - timedelta(1))]})
    out = await respond(
        make_env("什么时候发货 我的工单进度"),
        ruleset.replies,
        LINKS,
        faq=ruleset.faq,
        tickets=lookup,
    )
    assert out.reply is not None
    assert out.reply.kind == "status"
    assert "48 小时" not in out.reply.text
