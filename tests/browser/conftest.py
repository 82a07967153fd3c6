"""The browser tests drive the same real service process as the served tests, in
Debian's Chromium through Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.served.conftest import served  # noqa: F401 - re-exported fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the networking flags Chromium floods the closed network of the test machines.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (a fresh empty profile per launch).

    Per module: Playwright's sync API holds an event loop while it runs, and the tests
    after these ones use `asyncio.run`.
    """
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()
