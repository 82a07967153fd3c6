"""The WeChat endpoint as WeChat's servers see it: verification, replies, retries, hostility."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from intake_hub.connectors.wechat import verify
from intake_hub.storage.models import WeChatDelivery
from tests.connectors.wechat.conftest import (
    ACCOUNT,
    AES_KEY,
    APP_ID,
    OLD_AES_KEY,
    OPENID,
    TOKEN,
    Serve,
    encrypt,
    event_push,
    open_reply,
    post,
    signed,
    stored,
    text_push,
)

PATH = "/hooks/shop"


def msg_id() -> int:
    """A fresh MsgId, so tests never share one."""
    return random.randrange(10**16, 10**17)


async def test_url_check_echoes_echostr_for_the_official_vector(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving the server URL in WeChat's settings succeeds: the echostr comes back verbatim."""
    # The vector is signed at 2024-04-25 09:15:04 UTC: judge it by a clock of that moment.
    monkeypatch.setattr(verify, "clock", lambda: 1714036504.0 + 10)
    client, _ = await serve(token="AAAAA")
    query = {
        "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
        "timestamp": "1714036504",
        "nonce": "1514711492",
        "echostr": "4375120948345356249",
    }
    resp = await client.get(PATH, params=query)
    assert resp.status == 200
    assert await resp.text() == "4375120948345356249"


async def test_url_check_with_a_wrong_signature_is_forbidden(serve: Serve) -> None:
    """Someone who does not know the token cannot pass the URL check."""
    client, _ = await serve()
    query = signed(token="wrongToken", echostr="123")
    resp = await client.get(PATH, params=query)
    assert resp.status == 403
    assert "123" not in await resp.text()


@pytest.mark.parametrize("safe_mode", [False, True])
async def test_push_with_a_wrong_signature_is_forbidden_and_stores_nothing(
    serve: Serve, safe_mode: bool
) -> None:
    """A forged push gets 403 and no ticket, in plaintext and in safe mode."""
    client, core = await serve(aes_key=AES_KEY if safe_mode else "")
    body, query = encrypt(text_push(msg_id())) if safe_mode else (text_push(msg_id()), signed())
    query["signature"] = "0" * 40
    resp = await post(client, PATH, body, query)
    assert resp.status == 403
    assert core.seen == [] and await stored() == 0


async def test_safe_mode_push_with_a_wrong_msg_signature_is_forbidden(serve: Serve) -> None:
    """An encrypted body swapped under a valid URL signature is refused with 403."""
    client, core = await serve(aes_key=AES_KEY)
    body, query = encrypt(text_push(msg_id()))
    query["msg_signature"] = "f" * 40
    resp = await post(client, PATH, body, query)
    assert resp.status == 403
    assert core.seen == [] and await stored() == 0


async def test_plaintext_message_gets_the_auto_reply_as_passive_reply(serve: Serve) -> None:
    """In plaintext mode the customer sees the auto-reply at once in the chat."""
    client, core = await serve()
    resp = await post(client, PATH, text_push(msg_id(), "快递三天没动了"), signed())
    assert resp.status == 200
    import xmltodict  # type: ignore[import-untyped]

    reply = xmltodict.parse(await resp.text())["xml"]
    assert reply["Content"] == core.reply_text
    assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, ACCOUNT)
    [env] = core.seen
    assert env.text == "快递三天没动了" and env.channel == "wechat" and env.source == "wechat/shop"
    assert env.customer.key == OPENID


@pytest.mark.parametrize(
    ("safe_mode", "identity"), [(True, "verified"), (False, "claimed")], ids=["safe", "plain"]
)
async def test_only_a_sealed_push_names_a_verified_customer(
    serve: Serve, safe_mode: bool, identity: str
) -> None:
    """In plaintext mode the signature leaves the body unsigned: its openid is only claimed."""
    client, core = await serve(aes_key=AES_KEY if safe_mode else "")
    push = text_push(msg_id(), "在吗")
    body, query = encrypt(push) if safe_mode else (push, signed())
    resp = await post(client, PATH, body, query)
    assert resp.status == 200
    [env] = core.seen
    assert (env.customer.key, env.customer.identity) == (OPENID, identity)


async def test_encrypted_message_gets_an_encrypted_passive_reply(serve: Serve) -> None:
    """In safe mode the customer's message is read and the reply goes back encrypted."""
    client, core = await serve(aes_key=AES_KEY)
    body, query = encrypt(text_push(msg_id(), "发票开错了"))
    resp = await post(client, PATH, body, query)
    assert resp.status == 200
    text = await resp.text()
    assert core.reply_text not in text
    reply = open_reply(text)
    assert reply["Content"] == core.reply_text
    assert (reply["ToUserName"], reply["FromUserName"], reply["MsgType"]) == (
        OPENID,
        ACCOUNT,
        "text",
    )
    assert [e.text for e in core.seen] == ["发票开错了"]


async def test_previous_aes_key_still_works_during_rotation(serve: Serve) -> None:
    """Messages WeChat still encrypts with the old key are read, and answered in that key."""
    client, core = await serve(aes_key=AES_KEY, previous_aes_key=OLD_AES_KEY)
    body, query = encrypt(text_push(msg_id(), "old key"), key=OLD_AES_KEY)
    resp = await post(client, PATH, body, query)
    assert resp.status == 200
    assert open_reply(await resp.text(), key=OLD_AES_KEY)["Content"] == core.reply_text
    body, query = encrypt(text_push(msg_id(), "new key"))
    resp = await post(client, PATH, body, query)
    assert open_reply(await resp.text())["Content"] == core.reply_text
    assert [e.text for e in core.seen] == ["old key", "new key"]


@pytest.mark.parametrize(
    ("key", "app_id"),
    [(AES_KEY, "wx0000000000000000"), (OLD_AES_KEY, APP_ID)],
    ids=["other-appid", "unknown-key"],
)
async def test_message_for_another_account_or_key_is_refused(
    serve: Serve, key: str, app_id: str
) -> None:
    """A push sealed for another appid, or with a key we do not hold, makes no ticket."""
    client, core = await serve(aes_key=AES_KEY)
    body, query = encrypt(text_push(msg_id()), key=key, app_id=app_id)
    resp = await post(client, PATH, body, query)
    assert resp.status == 400
    assert core.seen == [] and await stored() == 0


async def test_plaintext_push_is_refused_in_safe_mode(serve: Serve) -> None:
    """With an AES key configured, an unencrypted body (the unsigned part) is not trusted."""
    client, core = await serve(aes_key=AES_KEY)
    resp = await post(client, PATH, text_push(msg_id()), signed())
    assert resp.status == 400
    assert core.seen == [] and await stored() == 0


@pytest.mark.parametrize("safe_mode", [False, True])
async def test_retries_get_the_same_answer_and_make_one_message(
    serve: Serve, safe_mode: bool
) -> None:
    """WeChat's three retries of one message make one ticket and the same reply every time."""
    client, core = await serve(aes_key=AES_KEY if safe_mode else "")
    push = text_push(msg_id(), "退款什么时候到账")
    contents = []
    for attempt in range(4):
        core.reply_text = f"reply {attempt}"
        body, query = encrypt(push) if safe_mode else (push, signed())
        resp = await post(client, PATH, body, query)
        assert resp.status == 200
        text = await resp.text()
        if safe_mode:
            contents.append(open_reply(text)["Content"])
        else:
            import xmltodict  # type: ignore[import-untyped]

            contents.append(xmltodict.parse(text)["xml"]["Content"])
    assert contents == ["reply 0"] * 4
    assert len(core.seen) == 1
    assert await stored() == 1
    row = await WeChatDelivery.get()
    assert row.answer == "reply 0" and row.envelope_id == core.seen[0].id


async def test_retry_during_the_first_delivery_emits_nothing_new(serve: Serve) -> None:
    """Retries racing the still-waiting first delivery make no second ticket and share its reply."""
    client, core = await serve(aes_key=AES_KEY)
    core.delay = 0.3
    push = text_push(msg_id())
    sealed = [encrypt(push) for _ in range(4)]
    responses = await asyncio.gather(*(post(client, PATH, b, q) for b, q in sealed))
    texts = [await r.text() for r in responses]
    assert [open_reply(t)["Content"] for t in texts] == [core.reply_text] * 4
    assert len(core.seen) == 1 and await stored() == 1


async def test_slow_auto_reply_answers_success_within_the_budget(serve: Serve) -> None:
    """When the auto-reply is late, WeChat hears `success` in time and the retry changes nothing."""
    client, core = await serve(aes_key=AES_KEY, reply_budget_s=0.2)
    core.delay = 5.0
    push = text_push(msg_id())
    started = time.perf_counter()
    resp = await post(client, PATH, *encrypt(push))
    elapsed = time.perf_counter() - started
    assert resp.status == 200 and await resp.text() == "success"
    assert elapsed < 1.0
    resp = await post(client, PATH, *encrypt(push))
    assert await resp.text() == "success"
    assert len(core.seen) == 1 and await stored() == 1


async def test_reply_containing_a_cdata_terminator_stays_intact(serve: Serve) -> None:
    """A reply text with `]]>` in it reaches the customer whole instead of breaking the XML."""
    client, core = await serve(aes_key=AES_KEY)
    core.reply_text = "订单 ]]><Content>evil</Content> 已处理"
    resp = await post(client, PATH, *encrypt(text_push(msg_id())))
    assert open_reply(await resp.text())["Content"] == core.reply_text


async def test_failed_emit_lets_the_retry_make_the_ticket(serve: Serve) -> None:
    """If the bus refuses the first delivery, WeChat's retry still becomes the ticket."""
    client, core = await serve()
    push = text_push(msg_id())
    core.fail = True
    resp = await post(client, PATH, push, signed())
    assert resp.status == 500
    assert await stored() == 0
    core.fail = False
    resp = await post(client, PATH, push, signed())
    assert resp.status == 200 and len(core.seen) == 1 and await stored() == 1


async def test_new_follower_gets_the_welcome_and_no_ticket(serve: Serve) -> None:
    """Following the account shows the configured welcome; unfollowing answers nothing."""
    client, core = await serve(aes_key=AES_KEY, welcome="欢迎光临本店")
    resp = await post(client, PATH, *encrypt(event_push("subscribe")))
    assert open_reply(await resp.text())["Content"] == "欢迎光临本店"
    resp = await post(client, PATH, *encrypt(event_push("unsubscribe")))
    assert await resp.text() == "success"
    assert core.seen == [] and await stored() == 0


async def test_menu_click_makes_one_ticket_keyed_on_the_event(serve: Serve) -> None:
    """A configured menu button counts as the customer's message, once however often retried."""
    client, core = await serve(menu={"LOGISTICS": "查询物流"})
    push = event_push("CLICK", key="LOGISTICS")
    for _ in range(2):
        resp = await post(client, PATH, push, signed())
        assert resp.status == 200
    [env] = core.seen
    assert env.text == "查询物流" and env.external_id == f"{OPENID}:1714036504:click"


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
    '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&e;</Content><MsgId>1</MsgId></xml>"
)
HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "xxe": XXE,
    "malformed": "<xml><MsgType>text</MsgType><Content>x</Cont",
    "no-msgtype": "<xml><FromUserName>o</FromUserName><Content>x</Content></xml>",
    "no-sender": "<xml><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
    "empty": "",
    "no-content": text_push(1).replace("<Content><![CDATA[衣服开线了，想退货]]></Content>", ""),
    "bad-location": text_push(1)
    .replace("text", "location")
    .replace("<Content>", "<Location_X>inf</Location_X><Label>")
    .replace("</Content>", "</Label>"),
    "not-utf8": b"<xml>\xff\xfe\xfd</xml>",
}


@pytest.mark.parametrize("safe_mode", [False, True])
@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_or_broken_push_is_refused_and_nothing_kept(
    serve: Serve, name: str, safe_mode: bool
) -> None:
    """Entity tricks, broken XML and missing fields get 400, no ticket and nothing leaked."""
    client, core = await serve(aes_key=AES_KEY if safe_mode else "")
    payload = HOSTILE[name]
    if safe_mode and isinstance(payload, str):
        resp = await post(client, PATH, *encrypt(payload))
    else:
        query = signed(encrypt_type="aes") if safe_mode else signed()
        resp = await post(client, PATH, payload, query)
    assert resp.status == 400
    text = await resp.text()
    assert "root:" not in text and "aaaaaaaaaa" not in text
    assert core.seen == [] and await stored() == 0


@pytest.mark.parametrize(
    "outer",
    [BILLION_LAUGHS, XXE, "<xml><Encrypt>", "<xml><ToUserName>gh</ToUserName></xml>"],
    ids=["billion-laughs", "xxe", "malformed", "no-encrypt"],
)
async def test_hostile_outer_envelope_in_safe_mode_is_refused(serve: Serve, outer: str) -> None:
    """The encrypted envelope itself is parsed as safely as the message inside it."""
    client, core = await serve(aes_key=AES_KEY)
    resp = await post(client, PATH, outer, signed(encrypt_type="aes", msg_signature="0" * 40))
    assert resp.status == 400
    assert core.seen == [] and await stored() == 0


async def test_oversized_push_is_refused(serve: Serve) -> None:
    """A body over the configured limit gets 413 before any of it is parsed."""
    client, core = await serve(max_body_bytes=4096)
    resp = await post(client, PATH, text_push(msg_id(), "长" * 5000), signed())
    assert resp.status == 413
    assert core.seen == [] and await stored() == 0


async def test_unsigned_get_and_post_tell_nothing(serve: Serve) -> None:
    """Requests without any signature are forbidden on both methods."""
    client, _ = await serve()
    assert (await client.get(PATH, params={"echostr": "x"})).status == 403
    assert (await client.post(PATH, data=text_push(msg_id()))).status == 403
    assert TOKEN not in await (await client.get(PATH)).text()


async def test_retry_waiting_on_a_failed_first_delivery_makes_the_ticket(serve: Serve) -> None:
    """If the first delivery cannot reach the bus while a retry waits, the retry takes over."""
    client, core = await serve()
    core.fail_once_after = 0.2
    push = text_push(msg_id())
    first = asyncio.ensure_future(post(client, PATH, push, signed()))
    await asyncio.sleep(0.05)
    retry = await post(client, PATH, push, signed())
    assert (await first).status == 500
    assert retry.status == 200 and "已收到" in await retry.text()
    assert len(core.seen) == 1 and await stored() == 1
