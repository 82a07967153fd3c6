"""The pages under their Content-Security-Policy in Chromium: styled, and nothing blocked."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, ConsoleMessage

from tests.served.conftest import Served

pytestmark = pytest.mark.browser


def test_pages_keep_their_style_and_break_no_policy(browser: Browser, served: Served) -> None:
    """The form and the status page load the stylesheet; the console reports no CSP violation."""
    page = browser.new_page(locale="en-US")
    messages: list[str] = []

    def keep(msg: ConsoleMessage) -> None:
        messages.append(msg.text)

    page.on("console", keep)
    page.goto(served.url + "/?lang=en")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 248, 250)"
    page.fill("input[name=name]", "Tom Baker")
    page.fill("input[name=contact]", "tom@example.com")
    page.fill("textarea[name=text]", "The kettle arrived with a cracked lid.")
    page.click("button[type=submit]")
    assert page.locator("#ticket-number").count() == 1
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
    assert not [m for m in messages if "Content Security Policy" in m], messages
