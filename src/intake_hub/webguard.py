"""What every HTTP answer carries for safety, the same-origin check of form posts, and an
access log that never records a secret (access codes, WeChat signatures, tokens)."""

from __future__ import annotations

from urllib.parse import unquote_plus, urlsplit

from aiohttp import web, web_response
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

# Query parameters whose values are secrets or let a request be replayed.
SECRET_PARAMS = frozenset({"code", "signature", "msg_signature", "echostr", "nonce", "timestamp"})
REDACTED = "[redacted]"

# The pages use only same-origin stylesheets, no script and no inline style.
CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Replaces aiohttp's `Python/3.x aiohttp/x.y` banner, which it only sets when none is set.
SERVER = "intake-hub"


def is_secret_param(name: str) -> bool:
    """Whether a query parameter's value must never be written to a log."""
    lowered = unquote_plus(name).lower()
    return lowered in SECRET_PARAMS or "token" in lowered or "secret" in lowered


def redact(target: str) -> str:
    """`path?query` with the value of every secret parameter replaced by `[redacted]`."""
    path, sep, query = target.partition("?")
    if not sep:
        return path
    parts = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and is_secret_param(name) else part)
    return f"{path}?{'&'.join(parts)}"


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request: client, method, redacted target, status, size, time, agent.

    No body, no Authorization or Cookie header, no Referer (it may hold another
    page's code); the format argument is ignored so `%r` can never come back.
    """

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write the line for one finished request."""
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            redact(request.raw_path),
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the security headers on every answer, and no version banner."""
    headers = response.headers
    headers["Server"] = SERVER
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Not `no-referrer`: under it browsers send `Origin: null` on our own form posts, which
    # the cross-site check could not tell from a sandboxed attacker. `same-origin` still
    # never sends a page's URL (and its access code) to another site.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    # Pages and JSON carry personal data; only the stylesheet may be kept by a cache.
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


def hide_server_banner() -> None:
    """Give aiohttp's own answers (a malformed request, refused before routing) no banner."""
    # Those never reach `on_response_prepare`; aiohttp fills their `Server` from this global.
    web_response.SERVER_SOFTWARE = SERVER  # type: ignore[attr-defined]


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site(request: web.Request, public_url: str) -> bool:
    """Whether a form post comes from another site's page, and must be refused.

    A real `Origin` decides: ours is the request's own host or the public URL. Without
    one, or with `null` (a sandboxed frame, or a page under `no-referrer`), the browser's
    `Sec-Fetch-Site` decides; a post with neither (curl, old browsers) is let in, a bare
    `null` is not.
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin.strip().lower() != "null":
        origin = origin.strip().rstrip("/").lower()
        if origin == _origin_of(public_url):
            return False
        return urlsplit(origin).netloc != request.host.lower()
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    return origin is not None
