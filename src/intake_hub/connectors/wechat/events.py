"""Pushes that make no ticket but still ask for something: follow, unfollow, "my tickets".

What is shown or changed depends on who sent it (the trust model): in safe mode the
openid is verified, WeChat's signature covering the decrypted body. In plaintext mode it
is only claimed, since the query signature leaves the body unsigned; then "my tickets"
lists nothing, and a union id never joins the openid to another customer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from intake_hub.connectors.wechat.normalize import Inbound, NoTicket
from intake_hub.connectors.wechat.stores import FollowerStore
from intake_hub.envelope import Identity
from intake_hub.status import OpenTicket

log = logging.getLogger(__name__)

TICKETS_UNAVAILABLE = "暂时查不到您的工单，请稍后再点一次“我的工单”。"
TICKETS_NOT_LISTED = "本公众号暂不提供工单列表，请点开工单回复消息中的状态链接查看进度。"


@dataclass
class Events:
    """One account's answers to follow, unfollow and the "my tickets" button."""

    instance: str
    followers: FollowerStore
    # The customer's open tickets as the rules word them (the "my tickets" button's answer).
    tickets_text: Callable[[Sequence[OpenTicket]], str | None]

    async def answer(
        self, outcome: NoTicket, inbound: Inbound, identity: Identity, within_s: float
    ) -> str:
        """Do what a push that makes no ticket still asks for; the passive reply text."""
        at = datetime.fromtimestamp(inbound.create_time, UTC)
        union_id = inbound.union_id if identity == "verified" else None
        if outcome.action == "follow":
            try:
                await self.followers.follow(inbound.openid, union_id, at)
            except Exception:
                # The welcome matters more now; the customer's first message makes the
                # customer anyway, and a later message outweighs a stale unfollow mark.
                log.exception("wechat/%s: could not record a follow", self.instance)
        elif outcome.action == "unfollow":
            try:
                await self.followers.unfollow(inbound.openid, union_id, at)
            except Exception:
                log.exception("wechat/%s: could not record an unfollow", self.instance)
                # Not answered, so WeChat delivers the event again.
                raise web.HTTPServiceUnavailable(text="unfollow not recorded") from None
        elif outcome.action == "my_tickets":
            if identity != "verified":
                return TICKETS_NOT_LISTED
            return await self._my_tickets(inbound.openid, within_s)
        return outcome.reply

    async def _my_tickets(self, openid: str, within_s: float) -> str:
        """The customer's open tickets as text, or a "try again" text when out of time."""
        try:
            found = await asyncio.wait_for(self.followers.open_tickets(openid), within_s)
        except Exception:
            log.exception("wechat/%s: could not list open tickets", self.instance)
            return TICKETS_UNAVAILABLE
        return self.tickets_text(found) or ""
