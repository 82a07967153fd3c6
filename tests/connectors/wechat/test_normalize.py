"""WeChat push to envelope: golden payload files, and broken pushes refused by name."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake_hub.bus import codec
from intake_hub.connectors.wechat.normalize import (
    BadMessage,
    Inbound,
    NoTicket,
    cdata_safe,
    parse,
    signature,
    to_envelope,
)
from intake_hub.envelope import Envelope, Identity

PAYLOADS = Path(__file__).parent / "payloads"
CASES = sorted(PAYLOADS.glob("*.xml"))
MENU = {"LOGISTICS": "查询物流"}
HEAD = (
    "<ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
    "<CreateTime>1714036504</CreateTime>"
)


def _normalise(payload: Path, identity: Identity) -> tuple[Inbound, Envelope | NoTicket]:
    """The recorded push read and normalised for the test account, as `identity`."""
    inbound = parse(payload.read_bytes())
    outcome = to_envelope(
        inbound,
        env_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        received_at=datetime.now(UTC),
        instance="shop",
        welcome="欢迎关注",
        menu=MENU,
        my_tickets_key="MY_TICKETS",
        identity=identity,
    )
    return inbound, outcome


@pytest.mark.parametrize("payload", CASES, ids=[p.stem for p in CASES])
def test_payload_normalises_to_the_expected_envelope(payload: Path) -> None:
    """Each recorded push, as safe mode reads it, gives the envelope or the answer beside it."""
    inbound, outcome = _normalise(payload, "verified")
    expected = json.loads(payload.with_suffix(".expected.json").read_text())
    if isinstance(outcome, NoTicket):
        said = {"reply": outcome.reply, "why": outcome.why}
        if outcome.action:
            said["action"] = outcome.action
        if inbound.union_id:
            said["union_id"] = inbound.union_id
        assert {"no_ticket": said} == expected
        return
    got = outcome.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    assert {k: got.get(k) for k in expected} == expected
    assert set(got) - set(expected) <= {"id", "ticket", "received_at"}
    assert codec.decode(codec.encode(outcome)) == outcome


@pytest.mark.parametrize("payload", CASES, ids=[p.stem for p in CASES])
def test_plaintext_mode_push_names_a_claimed_customer(payload: Path) -> None:
    """Unsealed, the same push gives the same envelope, its openid only claimed."""
    _, verified = _normalise(payload, "verified")
    _, claimed = _normalise(payload, "claimed")
    if isinstance(verified, NoTicket):
        assert claimed == verified
        return
    assert isinstance(claimed, Envelope)
    assert (verified.customer.identity, claimed.customer.identity) == ("verified", "claimed")
    same = verified.customer.model_copy(update={"identity": "claimed"})
    assert claimed.customer == same
    varies = {"id", "customer", "received_at"}
    assert claimed.model_dump(exclude=varies) == verified.model_dump(exclude=varies)


def test_identity_is_claimed_unless_the_connector_vouches() -> None:
    """Without an `identity` the envelope's customer is claimed, the safe default."""
    inbound = parse((PAYLOADS / "text.xml").read_bytes())
    env = to_envelope(
        inbound,
        env_id=uuid.uuid4(),
        ticket="0K3M7Q2X9HT",
        received_at=datetime.now(UTC),
        instance="shop",
    )
    assert isinstance(env, Envelope) and env.customer.identity == "claimed"


def test_envelope_without_union_id_from_before_still_decodes() -> None:
    """An envelope encoded before `union_id` existed (still on the bus) decodes unchanged."""
    old = {
        "id": str(uuid.uuid4()),
        "channel": "wechat",
        "source": "wechat/shop",
        "external_id": "24530287612001234",
        "ticket": "0K3M7Q2X9HT",
        "customer": {"key": "oia2TjjewbmiOUlr6X-1crbLOvLw"},
        "text": "衣服开线了",
        "received_at": "2024-04-25T09:15:04Z",
    }
    env = codec.decode(json.dumps(old).encode())
    assert env.customer.union_id is None and env.customer.key == old["customer"]["key"]


def test_url_check_matches_the_official_vector() -> None:
    """The signature WeChat's documentation gives for its sample URL check comes out the same."""
    got = signature("AAAAA", "1714036504", "1514711492")
    assert got == "f464b24fc39322e44b38aa78f5edd27bd1441696"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<xml",
        b"not xml at all",
        b"<a/>",
        b"<xml>text</xml>",
        b"<xml>\xff\xfe</xml>",
        b"<xml><Content>no type</Content></xml>",
        f"<xml>{HEAD}<MsgType>text</MsgType><Content>x</Content></xml>".encode(),
        f"<xml>{HEAD}<MsgType>text</MsgType><Content>x</Content><MsgId>abc</MsgId></xml>".encode(),
        b"<xml><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
        f"<xml>{HEAD}<MsgType><a>1</a></MsgType><MsgId>1</MsgId></xml>".encode(),
        f"<xml>{HEAD}<MsgType>text</MsgType><Content><b>1</b></Content><MsgId>1</MsgId></xml>".encode(),
        f"<xml>{HEAD}<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId>"
        f"<UnionID><a>1</a></UnionID></xml>".encode(),
        f"<xml>{HEAD}<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId>"
        f"<UnionID>o6 ' OR 1=1</UnionID></xml>".encode(),
        f"<xml>{HEAD}<MsgType>location</MsgType><Location_X>nan</Location_X>"
        f"<Location_Y>1</Location_Y><MsgId>1</MsgId></xml>".encode(),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><MsgType>text</MsgType><Content>&e;</Content></xml>",
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<xml><MsgType>text</MsgType><Content>&c;</Content></xml>",
    ],
)
def test_broken_or_hostile_push_is_refused(body: bytes) -> None:
    """Malformed XML, missing fields and entity tricks are refused rather than half-read."""
    with pytest.raises(BadMessage):
        inbound = parse(body)
        to_envelope(
            inbound,
            env_id=uuid.uuid4(),
            ticket="0K3M7Q2X9HT",
            received_at=datetime.now(UTC),
            instance="shop",
        )


def test_reply_text_cannot_close_the_cdata_section() -> None:
    """A reply containing ]]> reads back unchanged once split across CDATA sections."""
    import xmltodict  # type: ignore[import-untyped]

    text = "a]]>b]]>"
    xml = f"<xml><Content><![CDATA[{cdata_safe(text)}]]></Content></xml>"
    assert xmltodict.parse(xml)["xml"]["Content"] == text
