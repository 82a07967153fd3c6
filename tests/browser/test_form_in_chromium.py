"""The customer's path in a real browser: fill the form, get a ticket, open its status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.served.conftest import Served, start_service

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One service process for this module's tests (starting one costs seconds): they post
    from contacts of their own and read only their own tickets."""
    home = tmp_path_factory.mktemp("browser") / "home"
    home.mkdir()
    s = start_service(home)
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_customer_submits_the_form_and_reads_the_status(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    """Filling the Chinese form shows a ticket number and code; the status page shows the ack."""
    page = browser.new_page(locale="zh-CN", viewport={"width": 390, "height": 844})
    page.goto(served.url + "/")
    assert page.locator("h1").inner_text() == "联系客服"
    page.fill("input[name=name]", "王女士")
    page.fill("input[name=contact]", "13800138000")
    page.fill("textarea[name=text]", "尺码不对，想换大一码，订单号 4102938475610")
    page.click("button[type=submit]")

    number = page.locator("#ticket-number").inner_text()
    code = page.locator("#access-code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}", number)
    assert re.fullmatch(r"[0-9A-Z]{8}", code)
    page.screenshot(path=str(tmp_path / "accepted.png"))

    # Later, the customer comes back through the link and sees the conversation.
    page.goto(f"{served.url}/tickets/{number.replace('-', '')}?code={code}")
    page.wait_for_selector(".msg.out", timeout=10_000)
    for _ in range(20):
        if page.locator(".msg.out").count():
            break
        page.reload()
    assert "尺码不对" in page.locator(".msg.in").first.inner_text()
    assert (
        number in page.locator(".msg.out").first.inner_text()
        or number.replace("-", "") in page.locator(".msg.out").first.inner_text()
    )
    assert page.locator("#status").get_attribute("data-status") in ("received", "in_progress")


def test_english_browser_gets_the_english_form(browser: Browser, served: Served) -> None:
    """A browser asking for English sees the English form."""
    page = browser.new_page(locale="en-US", extra_http_headers={"Accept-Language": "en-US"})
    page.goto(served.url + "/")
    assert page.locator("h1").inner_text() == "Contact customer service"
    assert page.locator("button[type=submit]").inner_text() == "Send"


def test_customer_continues_the_conversation_from_the_status_page(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    """The status page's reply box, without JavaScript, adds the message to that ticket."""
    context = browser.new_context(
        java_script_enabled=False, locale="en-US", extra_http_headers={"Accept-Language": "en"}
    )
    page = context.new_page()
    page.goto(served.url + "/?lang=en")
    page.fill("input[name=name]", "Tom Baker")
    page.fill("input[name=contact]", "tom@example.com")
    page.fill("textarea[name=text]", "The kettle arrived with a cracked lid.")
    page.click("button[type=submit]")
    status_url = page.url
    for _ in range(50):
        if page.locator("#reply-form").count():
            break
        page.wait_for_timeout(100)
        page.goto(status_url)
    page.fill("#reply-form textarea[name=text]", "Photo: the crack is 3 cm <long>.")
    page.click("#reply-form button[type=submit]")
    assert page.locator("#sent").inner_text() == (
        "Your message was sent. We will answer on this ticket."
    )
    for _ in range(50):
        if page.locator(".msg.in").count() == 2:
            break
        page.wait_for_timeout(100)
        page.reload()
    texts = page.locator(".msg.in p").all_inner_texts()
    assert texts == ["The kettle arrived with a cracked lid.", "Photo: the crack is 3 cm <long>."]
    page.screenshot(path=str(tmp_path / "replied.png"), full_page=True)
    context.close()


def test_a_form_over_the_limit_says_when_and_keeps_the_text(
    browser: Browser, tmp_path: Path
) -> None:
    """The third form from one contact within the hour: the wait in words, the text kept."""
    home, connectors = tmp_path / "home", tmp_path / "connectors"
    home.mkdir()
    connectors.mkdir()
    (connectors / "web.yaml").write_text(
        "type: web\nname: web\nlimits:\n  messages_per_contact: {count: 2, per: hour}\n"
    )
    served = start_service(
        home, INTAKE_HUB_CONNECTORS_DIR=str(connectors), INTAKE_HUB_RATE_LIMITS="on"
    )
    try:
        page = browser.new_page(locale="zh-CN", viewport={"width": 390, "height": 844})
        for n in range(3):
            page.goto(served.url + "/")
            page.fill("input[name=name]", "陈先生")
            page.fill("input[name=contact]", "13912345678")
            page.fill("textarea[name=text]", f"第 {n + 1} 次：发票抬头写错了，能重开吗？")
            page.click("button[type=submit]")
        assert "提交太频繁了" in page.locator("#notice").inner_text()
        assert "分钟" in page.locator("#notice").inner_text()
        typed = page.locator("textarea[name=text]").input_value()
        assert typed == "第 3 次：发票抬头写错了，能重开吗？"
        assert page.locator("input[name=contact]").input_value() == "13912345678"
        page.screenshot(path=str(tmp_path / "limited.png"), full_page=True)
    finally:
        served.stop()
