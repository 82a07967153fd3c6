"""Agents see why each ticket was classified, answered and routed as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

from intake_hub.app import SERVICES
from intake_hub.rules import load_rules
from intake_hub.stages.explain import explain
from tests.conftest import ROOT
from tests.web.conftest import AUTH, Client, post_message, settle

COMPLAINT = "我要投诉，再不处理就打12315"


async def _detail(client: Client, number: str) -> dict[str, object]:
    resp = await client.get(f"/api/v1/tickets/{number}", headers=AUTH)
    assert resp.status == 200
    body: dict[str, object] = await resp.json()
    return body


async def test_ticket_carries_the_explanation_rules_explain_gives(client: Client) -> None:
    """The stored explanation agrees with the ticket and with `rules explain` for its text."""
    sent = await post_message(client, text=COMPLAINT)
    await settle(client)
    ticket = await _detail(client, sent["ticket"])
    why = ticket["explanation"]
    assert isinstance(why, dict)
    assert why["rules_version"] == client.app[SERVICES].rules.version
    labels, route = why["labels"], why["route"]
    assert (labels["category"], labels["priority"]) == (ticket["category"], ticket["priority"])
    assert {"投诉", "12315"} <= set(labels["matched"])
    assert any("12315" in r for r in labels["priority_reasons"])
    assert why["reply"]["kind"] == "ack"
    assert route["team"] == ticket["team"] and route["reasons"]

    explained = (await explain(COMPLAINT, load_rules(ROOT / "rules"))).as_dict()
    for key in ("category", "confidence", "matched", "secondary", "priority", "priority_reasons"):
        assert labels[key] == explained["labels"][key], key
    assert route["team"] == explained["route"]["team"]


async def test_explanation_is_not_recomputed_when_rules_change(
    client: Client, tmp_path: Path
) -> None:
    """After a rules reload an older ticket still shows the version it was decided with."""
    sent = await post_message(client, text=COMPLAINT)
    await settle(client)
    before = (await _detail(client, sent["ticket"]))["explanation"]

    edited = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", edited)
    with (edited / "classifier.yaml").open("a", encoding="utf-8") as f:
        f.write("\n# edited by an operator\n")
    reloader = client.app[SERVICES].reloader
    assert reloader is not None
    reloader.target.rules = load_rules(edited)

    after = (await _detail(client, sent["ticket"]))["explanation"]
    assert after == before
    assert isinstance(after, dict) and after["rules_version"] != reloader.target.rules.version
