"""Security headers on every answer, and form posts refused when they come from another site."""

from __future__ import annotations

import re

from intake_hub.app import SERVICES
from intake_hub.storage.models import Ticket
from intake_hub.webguard import CSP
from tests.conftest import ROOT
from tests.web.conftest import Client, post_message, settle

FORM = {"name": "Tom", "contact": "tom@example.com", "text": "The lid is cracked."}


def _own_origin(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_every_answer_has_the_security_headers_and_no_version_banner(
    client: Client,
) -> None:
    """Pages, JSON, errors, the stylesheet: nosniff, referrer kept home, CSP, no aiohttp banner."""
    data = await post_message(client)
    number, code = data["ticket"], data["access_code"]
    paths = [
        "/",
        f"/tickets/{number}?code={code}",
        f"/tickets/{number}?code=WRONG000",
        f"/api/v1/tickets/{number}/status?code={code}",
        "/api/v1/tickets",
        "/static/site.css",
        "/healthz",
        "/no/such/page",
    ]
    for path in paths:
        resp = await client.get(path)
        headers = resp.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        assert headers["Content-Security-Policy"] == CSP, path
        assert "aiohttp" not in headers["Server"].lower(), path
        assert "python" not in headers["Server"].lower(), path


async def test_pages_with_personal_data_are_never_stored_by_a_cache(client: Client) -> None:
    """The status page, its JSON twin and the form say no-store; the stylesheet may be cached."""
    data = await post_message(client)
    number, code = data["ticket"], data["access_code"]
    for path in ("/", f"/tickets/{number}?code={code}", f"/api/v1/tickets/{number}/status"):
        resp = await client.get(path, params={"code": code})
        assert resp.headers["Cache-Control"] == "no-store", path
    css = await client.get("/static/site.css")
    assert "no-store" not in css.headers.get("Cache-Control", "")


def test_csp_forbids_inline_script_and_framing() -> None:
    """Scripts only from our origin, none inline or eval'd; framing refused; forms post to us."""
    assert "script-src 'self';" in CSP
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    assert "frame-ancestors 'none'" in CSP and "form-action 'self'" in CSP
    assert "default-src 'self'" in CSP


def test_templates_have_nothing_inline_the_csp_would_block() -> None:
    """No inline <script>, no <style>, style= or on*= handler in any template."""
    for template in (ROOT / "src/intake_hub/templates").glob("*.html"):
        html = template.read_text()
        scripts = re.findall(r"<script[^>]*>.*?</script>", html, re.S)
        assert html.count("<script") == len(scripts), template.name
        for script in scripts:
            assert re.fullmatch(r'<script src="/static/[a-z_]+\.js" defer></script>', script)
        assert "<style" not in html, template.name
        assert not re.search(r"\s(style|on[a-z]+)\s*=", html), template.name


async def test_cross_site_form_post_is_refused_and_makes_no_ticket(client: Client) -> None:
    """Another site's page posting the form gets 403; nothing is emitted."""
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ):
        resp = await client.post("/", data=FORM, headers=headers, allow_redirects=False)
        assert resp.status == 403, headers
    await settle(client)
    assert await Ticket.all().count() == 0


async def test_cross_site_reply_post_is_refused(client: Client) -> None:
    """The reply box posted from another site is 403, even with the right code."""
    data = await post_message(client)
    await settle(client)
    number, code = data["ticket"], data["access_code"]
    resp = await client.post(
        f"/tickets/{number}/replies",
        data={"code": code, "text": "from elsewhere"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert resp.status == 403
    ok = await client.post(
        f"/tickets/{number}/replies",
        data={"code": code, "text": "from the page"},
        headers={"Origin": _own_origin(client), "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert ok.status == 303


async def test_own_public_or_missing_origin_is_allowed(client: Client) -> None:
    """Our own host, the configured public URL, or no Origin at all (curl): the post goes in."""
    public = client.app[SERVICES].links.public_url
    for headers in (
        {"Origin": _own_origin(client), "Sec-Fetch-Site": "same-origin"},
        {"Origin": public},
        {},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    ):
        resp = await client.post("/", data=FORM, headers=headers, allow_redirects=False)
        assert resp.status == 303, headers
