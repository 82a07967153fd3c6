"""Bad input at the web intake: a clear 4xx naming the field, and no ticket."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake_hub.app import METRICS
from intake_hub.config import Settings
from tests.web.conftest import AUTH, Client, settle

URL = "/api/v1/web/messages"
GOOD = {"name": "Tom", "contact": "tom@example.com", "text": "Where is my parcel?"}


def received(client: Client) -> float:
    """How many messages the service has accepted so far."""
    return client.app[METRICS].received.labels("web")._value.get()


async def ticket_count(client: Client) -> int:
    """How many tickets the agent API lists."""
    await settle(client)
    page = await (await client.get("/api/v1/tickets", headers=AUTH)).json()
    return len(page["items"])


@pytest.mark.parametrize(
    ("body", "ctype", "status", "field"),
    [
        (b"{not json", "application/json", 400, None),
        (b'{"name": "\xff\xfe", "contact": "a@b.cn", "text": "x"}', "application/json", 400, None),
        (orjson.dumps({**GOOD, "text": ""}), "application/json", 422, "text"),
        (orjson.dumps({**GOOD, "text": " \u200b\x00 "}), "application/json", 422, "text"),
        (orjson.dumps({"name": "Tom", "text": "hi"}), "application/json", 422, "contact"),
        (orjson.dumps({**GOOD, "name": 42}), "application/json", 422, "name"),
        (orjson.dumps({**GOOD, "text": ["a"]}), "application/json", 422, "text"),
        (orjson.dumps({**GOOD, "admin": True}), "application/json", 422, "admin"),
        (orjson.dumps([GOOD]), "application/json", 422, "body"),
        (orjson.dumps(GOOD), "text/plain", 415, None),
        (orjson.dumps({**GOOD, "text": "x" * 10_001}), "application/json", 422, "text"),
    ],
    ids=[
        "invalid-json",
        "non-utf8",
        "empty-text",
        "blank-after-cleaning",
        "missing-contact",
        "wrong-type",
        "list-for-string",
        "unknown-field",
        "array-body",
        "wrong-content-type",
        "text-too-long",
    ],
)
async def test_bad_body_is_a_4xx_naming_the_field_and_stores_nothing(
    client: Client, body: bytes, ctype: str, status: int, field: str | None
) -> None:
    """Each kind of bad body gets its 4xx with the field named, and makes no ticket."""
    resp = await client.post(URL, data=body, headers={"Content-Type": ctype})
    assert resp.status == status
    error = await resp.json()
    assert error["error"] and error["message"]
    if field is not None:
        assert field in [f["field"] for f in error["fields"]]
    assert received(client) == 0
    assert await ticket_count(client) == 0


async def test_body_over_the_limit_is_413(make_settings: Any, aiohttp_client: Any) -> None:
    """A body larger than the configured limit is refused with 413 before it is parsed."""
    from intake_hub.app import create_app

    settings: Settings = make_settings(max_body_bytes=2048)
    client = await aiohttp_client(create_app(settings))
    resp = await client.post(URL, json={**GOOD, "text": "长" * 3000})
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    assert received(client) == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {}, optional={k: json_values | st.text(min_size=1) for k in [*GOOD, "subject", "order_id"]}
    ),
    st.dictionaries(st.text(), json_values, max_size=6),
    json_values,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
async def test_no_json_body_ever_causes_a_5xx(client: Client, body: Any) -> None:
    """Any JSON at all gets a 202 or a 4xx with the error shape, never a 5xx."""
    resp = await client.post(
        URL, data=json.dumps(body, ensure_ascii=False), headers={"Content-Type": "application/json"}
    )
    assert resp.status in (202, 400, 422), await resp.text()
    data = await resp.json()
    if resp.status == 202:
        assert set(data) == {"ticket", "access_code", "status_url"}
    else:
        assert data["fields"] or resp.status == 400


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=300))
async def test_no_raw_bytes_ever_cause_a_5xx(client: Client, raw: bytes) -> None:
    """Arbitrary bytes as a JSON body get a 4xx (or a 202 if they happen to be valid)."""
    resp = await client.post(URL, data=raw, headers={"Content-Type": "application/json"})
    assert resp.status in (202, 400, 422)
