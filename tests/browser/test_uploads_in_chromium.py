"""Photos with a message in a real browser: chosen from disk, checked, shown as thumbnails,
and sent with a progress bar over a slow network."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, FilePayload, Page, Request, ViewportSize

from tests.served.conftest import Served, start_service

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
TEXT = "The kettle arrived with a cracked lid; photo attached."
PHONE = ViewportSize(width=390, height=844)
THUMB_LOADED = """() => {
  const imgs = document.querySelectorAll('.msg.in .attachments img');
  const img = imgs[imgs.length - 1];
  return img !== undefined && img.complete && img.naturalWidth > 0;
}"""


def photo(path: Path, size: tuple[int, int] = (800, 600), *, noise: bool = False) -> Path:
    """A JPEG like a phone's: a gradient, or noise that compresses badly (a large file)."""
    if noise:
        data = random.Random(12).randbytes(size[0] * size[1] * 3)
        img = Image.frombytes("RGB", size, data)
    else:
        img = Image.linear_gradient("L").resize(size).convert("RGB")
    img.save(path, "JPEG", quality=95)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One service for the module (a start costs seconds); each test reads only its own ticket."""
    home = tmp_path_factory.mktemp("uploads") / "home"
    home.mkdir()
    s = start_service(home)
    yield s
    if s.proc.poll() is None:
        s.stop()


@pytest.fixture(scope="module")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A service whose web connector takes files of at most 1 MiB."""
    root = tmp_path_factory.mktemp("small-files")
    home, connectors = root / "home", root / "connectors"
    home.mkdir()
    connectors.mkdir()
    (connectors / "web.yaml").write_text(
        "type: web\nname: web\nattachments:\n  max_file_bytes: 1048576\n"
    )
    served = start_service(home, INTAKE_HUB_CONNECTORS_DIR=str(connectors))
    yield served
    served.stop()


def fill_form(page: Page, served: Served, lang: str = "en") -> None:
    """Open the form in `lang` and type a message."""
    page.goto(f"{served.url}/?lang={lang}")
    page.fill("input[name=name]", "Tom Baker")
    page.fill("input[name=contact]", "tom@example.com")
    page.fill("textarea[name=text]", TEXT)


def stored_page(page: Page, messages: int = 1) -> None:
    """Reload the status page until `messages` customer messages are on it."""
    for _ in range(100):
        if page.locator(".msg.in").count() >= messages:
            return
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError(f"{messages} messages never showed: {page.content()}")


def shot(page: Page, name: str) -> None:
    """A full-page screenshot to look at."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def csp_reports(page: Page) -> list[str]:
    """The console's Content-Security-Policy complaints, collected as the page runs."""
    seen: list[str] = []

    def keep(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            seen.append(msg.text)

    page.on("console", keep)
    return seen


def test_a_photo_from_disk_shows_as_a_thumbnail_on_the_status_page(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    """The form sends the chosen photo; the status page shows its thumbnail and the full JPEG."""
    page = browser.new_page(locale="en-US", viewport=PHONE)
    complaints = csp_reports(page)
    fill_form(page, served)
    page.set_input_files("#message-form input[type=file]", photo(tmp_path / "kettle.jpg"))
    page.click("#message-form button[type=submit]")
    page.wait_for_url("**/tickets/**")
    stored_page(page)
    page.wait_for_function(THUMB_LOADED, timeout=10_000)
    link = page.locator(".msg.in a.thumb")
    assert page.locator(".msg.in .attachments img").get_attribute("alt") == "kettle.jpg"
    full = page.request.get(served.url + (link.get_attribute("href") or ""))
    assert full.status == 200
    assert full.headers["content-type"] == "image/jpeg"
    assert Image.open(tmp_path / "kettle.jpg").size == (800, 600)
    shot(page, "status-thumbnail.png")
    assert not complaints


def test_a_file_over_the_limit_comes_back_worded_with_the_text_kept(
    browser: Browser, small_files: Served, tmp_path: Path
) -> None:
    """Without JavaScript the server refuses the large file by number; the text stays typed."""
    context = browser.new_context(java_script_enabled=False, locale="en-US", viewport=PHONE)
    page = context.new_page()
    fill_form(page, small_files)
    big = photo(tmp_path / "big.jpg", (1200, 1000), noise=True)
    assert big.stat().st_size > 1048576
    page.set_input_files("#message-form input[type=file]", [photo(tmp_path / "ok.jpg"), big])
    page.click("#message-form button[type=submit]")
    error = page.locator(".errors li[data-field=attachments]")
    assert error.inner_text() == "File 2 is too large (each at most 1 MB)."
    assert page.locator("textarea[name=text]").input_value() == TEXT
    assert page.locator("input[name=contact]").input_value() == "tom@example.com"
    assert page.locator("#files-again").is_visible()
    assert page.locator("#files-hint").inner_text() == "Up to 5, each at most 1 MB."
    shot(page, "form-too-large.png")
    context.close()


def test_a_file_over_the_limit_is_named_before_it_is_sent(
    browser: Browser, small_files: Served, tmp_path: Path
) -> None:
    """With JavaScript the page names the large file at once and posts nothing."""
    page = browser.new_page(locale="zh-CN", viewport=PHONE)
    posts: list[str] = []

    def keep(request: Request) -> None:
        if request.method == "POST":
            posts.append(request.url)

    page.on("request", keep)
    fill_form(page, small_files, "zh")
    big = photo(tmp_path / "big.jpg", (1200, 1000), noise=True)
    page.set_input_files("#message-form input[type=file]", big)
    error = page.locator("#upload-error")
    assert error.inner_text() == "第 1 个文件太大了（每个不超过 1 MB）。"
    page.click("#message-form button[type=submit]")
    assert error.is_visible()
    assert page.locator("#upload-progress").is_hidden()
    assert page.locator("textarea[name=text]").input_value() == TEXT
    assert posts == []
    shot(page, "form-too-large-zh.png")


@pytest.mark.parametrize("head", [b"MZ\x90\x00\x03", b"\x7fELF\x02\x01\x01"])
def test_a_program_named_photo_jpg_is_refused_with_the_text_kept(
    browser: Browser, served: Served, head: bytes
) -> None:
    """A program disguised as a JPEG: the server's page, worded, replaces the form; text kept."""
    page = browser.new_page(locale="en-US", viewport=PHONE)
    fill_form(page, served)
    program = FilePayload(name="photo.jpg", mimeType="image/jpeg", buffer=head + bytes(4000))
    page.set_input_files("#message-form input[type=file]", program)
    page.click("#message-form button[type=submit]")
    error = page.locator(".errors li[data-field=attachments]")
    error.wait_for()
    assert error.inner_text() == (
        "File 1 is of a type that cannot be sent (a program, for example)."
    )
    assert page.locator("textarea[name=text]").input_value() == TEXT
    assert page.locator("#files-again").is_visible()
    assert page.url == f"{served.url}/?lang=en"
    shot(page, "form-program.png")


def test_the_progress_bar_shows_while_a_photo_crawls_up(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    """On a slow uplink the page shows a bar and a percentage until the status page opens."""
    page = browser.new_page(locale="zh-CN", viewport=PHONE)
    complaints = csp_reports(page)
    fill_form(page, served, "zh")
    big = photo(tmp_path / "large.jpg", (640, 480), noise=True)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 50, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", conditions | {"uploadThroughput": 150_000})
    page.set_input_files("#message-form input[type=file]", big)
    page.click("#message-form button[type=submit]")
    progress = page.locator("#upload-progress")
    progress.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#upload-progress progress').value >= 20")
    assert page.locator("#message-form button[type=submit]").is_disabled()
    assert "正在上传" in progress.inner_text()
    shot(page, "progress.png")
    page.wait_for_url("**/tickets/**", timeout=30_000)
    cdp.send("Network.emulateNetworkConditions", conditions | {"uploadThroughput": -1})
    stored_page(page)
    page.wait_for_function(THUMB_LOADED, timeout=10_000)
    assert not complaints


def test_a_photo_from_the_reply_box_shows_under_the_new_message(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    """A reply with a photo from the status page appears with its thumbnail."""
    page = browser.new_page(locale="en-US", viewport=PHONE)
    fill_form(page, served)
    page.click("#message-form button[type=submit]")
    page.wait_for_url("**/tickets/**")
    status_url = page.url
    for _ in range(100):
        if page.locator("#reply-form").count():
            break
        page.wait_for_timeout(100)
        page.goto(status_url)
    page.fill("#reply-form textarea[name=text]", "Here is the crack <close up>.")
    page.set_input_files("#reply-form input[type=file]", photo(tmp_path / "crack.jpg"))
    page.click("#reply-form button[type=submit]")
    page.wait_for_url("**sent=1**")
    stored_page(page, 2)
    page.wait_for_function(THUMB_LOADED, timeout=10_000)
    second = page.locator(".msg.in").nth(1)
    assert second.locator("p").inner_text() == "Here is the crack <close up>."
    assert second.locator("img").get_attribute("alt") == "crack.jpg"
    assert page.locator(".msg.in").first.locator("img").count() == 0
    shot(page, "status-reply-photo.png")
