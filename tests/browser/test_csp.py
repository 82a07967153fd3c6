"""The pages under their Content-Security-Policy in Chromium: styled, our script allowed,
nothing of ours blocked, and injected inline script still refused."""

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


def test_an_injected_inline_script_is_still_refused(browser: Browser, served: Served) -> None:
    """Under `script-src 'self'` an injected inline script and an on* handler do not run."""
    page = browser.new_page(locale="en-US")
    violations: list[str] = []

    def keep(msg: ConsoleMessage) -> None:
        violations.append(msg.text)

    page.on("console", keep)
    page.goto(served.url + "/?lang=en")
    page.evaluate("""() => {
        window.addEventListener('securitypolicyviolation', (e) => {
            window.blocked = (window.blocked || []).concat(e.effectiveDirective);
        });
        const s = document.createElement('script');
        s.textContent = 'window.inlineRan = true';
        document.head.append(s);
        const b = document.createElement('button');
        b.setAttribute('onclick', 'window.handlerRan = true');
        document.body.append(b);
        b.click();
    }""")
    assert page.evaluate("() => window.inlineRan") is None
    assert page.evaluate("() => window.handlerRan") is None
    page.wait_for_function("() => (window.blocked || []).length >= 2")
    assert set(page.evaluate("() => window.blocked")) >= {"script-src-elem", "script-src-attr"}
    assert [m for m in violations if "Content Security Policy" in m]
