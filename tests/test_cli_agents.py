"""`intake-hub agent add|list|disable|token` on a real database in a temporary home."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest

from intake_hub.cli import main
from intake_hub.storage import agents, db
from intake_hub.storage.agents import AgentInfo
from intake_hub.storage.models import Agent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh INTAKE_HUB_HOME: the embedded SQLite database lives there."""
    home = tmp_path / "home"
    monkeypatch.setenv("INTAKE_HUB_HOME", str(home))
    monkeypatch.delenv("INTAKE_HUB_DATABASE_URL", raising=False)
    return home


def add(login: str, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """Run `agent add` and return the token it printed."""
    assert main(["agent", "add", login, *flags]) == 0
    return capsys.readouterr().out.strip()


def who(home: Path, token: str) -> AgentInfo | None:
    """Whom `token` authenticates as, straight from the database."""

    async def look() -> AgentInfo | None:
        await db.open_db(f"sqlite://{home / 'intake-hub.sqlite3'}")
        try:
            return await agents.authenticate(token)
        finally:
            await db.close_db()

    return asyncio.run(look())


def online(home: Path, login: str) -> bool:
    """Whether routing may give `login` tickets."""

    async def look() -> bool:
        await db.open_db(f"sqlite://{home / 'intake-hub.sqlite3'}")
        try:
            return (await Agent.get(id=login)).online
        finally:
            await db.close_db()

    return asyncio.run(look())


def test_list_shows_agents_but_never_a_token_or_hash(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agent list` shows login, role, team and state, and no token or sha256 hash."""
    assert main(["agent", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no agents"
    li = add("li", capsys, "--team", "aftersales", "--name", "小李")
    boss = add("boss", capsys, "--role", "supervisor")
    assert main(["agent", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["boss", "supervisor", "-", "enabled", "boss"]
    assert lines[1].split() == ["li", "agent", "aftersales", "enabled", "小李"]
    assert lines[2] == "2 agent(s), 0 disabled"
    assert li not in out and boss not in out
    assert not re.search(r"[0-9a-f]{64}", out)


def test_list_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`agent list --json` gives the same fields as JSON, without a token."""
    add("li", capsys, "--team", "aftersales")
    assert main(["agent", "list", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == [
        {"login": "li", "name": "li", "role": "agent", "team": "aftersales", "enabled": True}
    ]


def test_disable_refuses_the_token_and_takes_the_agent_off_routing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agent disable` makes the token fail, sets the agent offline and lists them disabled."""
    token = add("li", capsys, "--team", "aftersales")
    assert who(home, token) == AgentInfo("li", "li", "agent", "aftersales")
    assert main(["agent", "disable", "li"]) == 0
    assert "li disabled" in capsys.readouterr().out
    assert who(home, token) is None
    assert not online(home, "li")
    assert main(["agent", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[3] == "disabled"
    # Disabling twice is harmless.
    assert main(["agent", "disable", "li"]) == 0


def test_token_rotates_and_re_enables(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`agent token` prints a new working token; the old stops; a disabled agent is back."""
    old = add("li", capsys)
    assert main(["agent", "token", "li"]) == 0
    new = capsys.readouterr().out.strip()
    assert new and new != old
    assert who(home, old) is None
    assert who(home, new) is not None
    assert main(["agent", "disable", "li"]) == 0
    assert main(["agent", "token", "li"]) == 0
    newer = capsys.readouterr().out.splitlines()[-1]
    assert who(home, newer) is not None and who(home, new) is None
    assert online(home, "li")
    assert main(["agent", "list", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)[0]["enabled"] is True


@pytest.mark.parametrize("command", ["disable", "token"])
def test_unknown_login_is_named_and_exits_1(
    home: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`agent disable|token` of a login nobody has says so on stderr and exits 1."""
    add("li", capsys)
    assert main(["agent", command, "ghost"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no agent ghost" in captured.err


def test_add_of_an_existing_login_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second `agent add` of one login exits 1 naming it, and the first token keeps working."""
    token = add("li", capsys)
    assert main(["agent", "add", "li"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "an agent li already exists" in captured.err
    assert who(home, token) is not None
