"""The "my tickets" menu answer: the customer's open tickets as chat text; no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from intake_hub.ticketno import pretty

SHOWN = 5
ZONE = ZoneInfo("Asia/Shanghai")

# Customer-facing words for the default taxonomy; an unknown id is shown as "其他问题".
CATEGORY_WORDS = {
    "presales": "售前咨询",
    "order_change": "订单修改",
    "logistics": "物流查询",
    "return_exchange": "退换货",
    "refund": "退款",
    "quality": "质量问题",
    "repair": "维修与技术支持",
    "complaint": "投诉",
    "invoice": "发票",
    "other": "其他问题",
}
STATUS_WORDS = {"received": "已受理", "in_progress": "处理中"}

NONE_OPEN = "您目前没有处理中的工单。有问题直接在这里留言，我们会为您新建工单并尽快回复。"
UNAVAILABLE = "暂时查不到您的工单，请稍后再点一次“我的工单”。"


@dataclass(frozen=True, slots=True)
class TicketLine:
    """One open ticket as the menu answer shows it."""

    number: str
    status: str
    category: str | None
    updated_at: datetime


def render(tickets: Sequence[TicketLine]) -> str:
    """The answer text: newest first, at most `SHOWN` tickets, or the "none open" text.

    Pass up to `SHOWN + 1` tickets: one more than shown says that there are more.
    """
    if not tickets:
        return NONE_OPEN
    newest = sorted(tickets, key=lambda t: t.updated_at, reverse=True)
    if len(newest) > SHOWN:
        lines = [f"您有 {SHOWN} 个以上处理中的工单，最近更新的 {SHOWN} 个："]
    else:
        lines = [f"您有 {len(newest)} 个处理中的工单："]
    for t in newest[:SHOWN]:
        what = CATEGORY_WORDS.get(t.category or "other", CATEGORY_WORDS["other"])
        status = STATUS_WORDS.get(t.status, t.status)
        when = t.updated_at.astimezone(ZONE).strftime("%m-%d %H:%M")
        lines.append(f"· {pretty(t.number)}｜{what}｜{status}｜更新于 {when}")
    lines.append("如需补充情况，直接回复并附上工单号即可。")
    return "\n".join(lines)
