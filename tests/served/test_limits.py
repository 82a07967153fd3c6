"""The web limits as operators run them: counted together by the processes of one home."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.served.conftest import start_service

WEB = """type: web
name: web
limits:
  messages_per_contact: {count: 4, per: hour}
"""


async def _post(session: aiohttp.ClientSession, url: str, n: int) -> int:
    body = {"name": "周女士", "contact": "zhou@example.com", "text": f"退款到哪一步了？第 {n} 次问"}
    async with session.post(url + "/api/v1/web/messages", json=body) as resp:
        return resp.status


def test_two_processes_on_one_home_count_together(tmp_path: Path) -> None:
    """One contact posting to two serve processes of one home gets four tickets in all."""
    home = tmp_path / "home"
    home.mkdir()
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    (connectors / "web.yaml").write_text(WEB)
    env = {"INTAKE_HUB_CONNECTORS_DIR": str(connectors), "INTAKE_HUB_RATE_LIMITS": "on"}
    first = start_service(home, **env)
    try:
        second = start_service(home, **env)
        try:

            async def run() -> list[int]:
                async with aiohttp.ClientSession() as session:
                    urls = [first.url, second.url] * 5
                    return list(
                        await asyncio.gather(*(_post(session, u, n) for n, u in enumerate(urls)))
                    )

            statuses = asyncio.run(run())
        finally:
            second.stop()
    finally:
        first.stop()
    assert sorted(statuses) == [202] * 4 + [429] * 6
