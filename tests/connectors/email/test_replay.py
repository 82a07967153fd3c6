"""Mail kept aside is replayed through the listener once the hub can read it."""

from __future__ import annotations

import asyncio
import codecs
import smtplib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from intake_hub.cli import main
from intake_hub.cli.mail import replay
from intake_hub.envelope import Envelope
from tests.connectors.email.conftest import Mailer, inbound, tickets
from tests.connectors.email.test_smtp import plain

ODD = "x-shop-legacy"


def _search(name: str) -> codecs.CodecInfo | None:
    return codecs.lookup("utf-8") if name == ODD.replace("-", "_") else None


@pytest.fixture
def fixed() -> Iterator[None]:
    """The hub learns the odd charset (the fix the replay waits for)."""
    codecs.register(_search)
    yield
    codecs.unregister(_search)


async def test_replay_before_and_after_the_fix(mailer: Mailer, fixed: None) -> None:
    """Replayed while still unreadable it stays kept; once readable it is taken and removed."""
    raw = plain("odd", "hello").replace(b'charset="utf-8"', f'charset="{ODD}"'.encode())
    codecs.unregister(_search)
    await mailer.send(raw)
    [kept] = sorted(mailer.unparsed.glob("*.eml"))
    assert await asyncio.to_thread(replay, [kept], "127.0.0.1", mailer.port) == 1
    assert sorted(mailer.unparsed.glob("*.eml")) == [kept]
    codecs.register(_search)
    assert await asyncio.to_thread(replay, [kept], "127.0.0.1", mailer.port) == 0
    await mailer.settle()
    assert list(mailer.unparsed.iterdir()) == []
    [ticket] = await tickets()
    assert [m.text for m in await inbound(ticket.number)] == ["hello"]


async def test_trouble_emitting_answers_451(mailer: Mailer) -> None:
    """When the message cannot be made durable the MTA is told to retry (451)."""

    async def down(env: Envelope) -> None:
        raise ConnectionError("broker down")

    working = mailer.connector.core
    mailer.connector.core = replace(working, emit=down)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await mailer.send(plain("retry me", "hi"))
    assert refused.value.smtp_code == 451
    mailer.connector.core = working
    await mailer.send(plain("retry me", "hi"))
    await mailer.settle()
    assert len(await tickets()) == 1


def test_the_command_with_nothing_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`intake-hub mail replay` with nothing under HOME/mail/unparsed says so and succeeds."""
    monkeypatch.setenv("INTAKE_HUB_HOME", str(tmp_path))
    assert main(["mail", "replay"]) == 0
    assert capsys.readouterr().out == "no mail kept aside\n"
