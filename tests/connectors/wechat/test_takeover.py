"""A first delivery that died before reaching the bus: WeChat's retry takes its claim over."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import xmltodict  # type: ignore[import-untyped]

from intake_hub import ticketno
from intake_hub.connectors.wechat.deliveries import Deliveries
from intake_hub.ids import uuid7
from intake_hub.storage.models import WeChatDelivery
from tests.connectors.wechat.conftest import (
    Client,
    Serve,
    encrypt,
    open_reply,
    post,
    signed,
    stored,
    text_push,
)
from tests.web.conftest import AUTH, settle

PATH = "/hooks/shop"
TICKET = "0K3M7Q2X9HT"


def msg_id() -> int:
    """A fresh MsgId, so tests never share one."""
    return random.randrange(10**16, 10**17)


async def dead_claim(key: int, age_s: float, instance: str = "shop") -> WeChatDelivery:
    """The row a first delivery leaves when its process dies before publishing."""
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    return await WeChatDelivery.create(
        instance=instance, msg_key=str(key), envelope_id=uuid7(), ticket=TICKET, created_at=created
    )


def content(text: str) -> str:
    """The passive reply's text in plaintext mode."""
    reply: str = xmltodict.parse(text)["xml"]["Content"]
    return reply


async def test_retry_takes_over_a_claim_left_by_a_dead_first_delivery(serve: Serve) -> None:
    """The retry emits the claimed envelope, same id and ticket number, and gets the reply."""
    client, core = await serve(reply_budget_s=0.5)
    key = msg_id()
    dead = await dead_claim(key, age_s=60)
    resp = await post(client, PATH, text_push(key), signed())
    assert resp.status == 200 and content(await resp.text()) == core.reply_text
    [env] = core.seen
    assert (env.id, env.ticket) == (dead.envelope_id, TICKET)
    assert await stored() == 1
    row = await WeChatDelivery.get()
    assert (row.answer, row.attempt) == (core.reply_text, 1)
    resp = await post(client, PATH, text_push(key), signed())
    assert content(await resp.text()) == core.reply_text and len(core.seen) == 1


async def test_retries_in_two_processes_racing_for_a_stale_claim_emit_once(serve: Serve) -> None:
    """Two workers' retries of a dead claim: one wins the takeover, both answer the same."""
    (client_a, core_a), (client_b, core_b) = await serve(), await serve()
    key = msg_id()
    await dead_claim(key, age_s=60)
    responses = await asyncio.gather(
        *(post(c, PATH, text_push(key), signed()) for c in (client_a, client_b, client_a))
    )
    texts = [content(await r.text()) for r in responses]
    assert texts == [core_a.reply_text] * 3
    assert len(core_a.seen) + len(core_b.seen) == 1
    row = await WeChatDelivery.get()
    assert (row.attempt, await stored()) == (1, 1)


async def test_only_one_of_many_takeovers_of_the_same_claim_wins(database: None) -> None:
    """The conditional update lets exactly one caller take a given attempt over."""
    key, deliveries = msg_id(), Deliveries()
    await dead_claim(key, age_s=60)
    won = await asyncio.gather(*(deliveries.take_over("shop", str(key), 0) for _ in range(8)))
    assert won.count(True) == 1
    assert not await deliveries.take_over("shop", str(key), 0)
    assert await deliveries.take_over("shop", str(key), 1)


async def test_a_holder_that_lost_its_claim_cannot_release_the_new_one(database: None) -> None:
    """A slow first delivery failing after a takeover leaves the taker's row in place."""
    key, deliveries = msg_id(), Deliveries()
    await dead_claim(key, age_s=60)
    assert await deliveries.take_over("shop", str(key), 0)
    await deliveries.release("shop", str(key), 0)
    assert await stored() == 1
    await deliveries.release("shop", str(key), 1)
    assert await stored() == 0


async def test_a_fresh_pending_claim_is_waited_on_not_taken_over(serve: Serve) -> None:
    """Within the grace period the first delivery may be alive: the retry waits, emits nothing."""
    client, core = await serve(reply_budget_s=0.3)
    key = msg_id()
    await dead_claim(key, age_s=1)
    resp = await post(client, PATH, text_push(key), signed())
    assert resp.status == 200 and await resp.text() == "success"
    assert core.seen == []
    row = await WeChatDelivery.get()
    assert (row.answer, row.attempt, row.claimed_at) == (None, 0, None)


async def tickets(client: Client) -> list[str]:
    """The numbers of the WeChat tickets the service stored."""
    resp = await client.get("/api/v1/tickets?channel=wechat", headers=AUTH)
    return [item["number"] for item in (await resp.json())["items"]]


async def test_takeover_through_the_service_stores_the_claimed_ticket_number(
    wechat_client: Client,
) -> None:
    """Taken over, the message becomes one ticket under the number the dead claim held."""
    key = msg_id()
    await dead_claim(key, age_s=60, instance="wechat")
    resp = await post(wechat_client, "/hooks/wechat", *encrypt(text_push(key)))
    assert resp.status == 200
    assert ticketno.pretty(TICKET) in open_reply(await resp.text())["Content"]
    await settle(wechat_client)
    assert await tickets(wechat_client) == [TICKET]


async def test_takeover_of_an_envelope_that_did_reach_the_bus_stores_it_once(
    wechat_client: Client,
) -> None:
    """A holder that published and then died: the re-emit is deduped, one ticket, same number."""
    key = msg_id()
    resp = await post(wechat_client, "/hooks/wechat", *encrypt(text_push(key)))
    assert resp.status == 200
    await settle(wechat_client)
    [number] = await tickets(wechat_client)
    old = datetime.now(UTC) - timedelta(seconds=60)
    await WeChatDelivery.filter(msg_key=str(key)).update(
        answer=None, answered_at=None, created_at=old
    )
    resp = await post(wechat_client, "/hooks/wechat", *encrypt(text_push(key)))
    assert resp.status == 200
    await settle(wechat_client)
    assert await tickets(wechat_client) == [number]
    row = await WeChatDelivery.get(msg_key=str(key))
    assert row.attempt == 1 and row.answer is not None
