"""What every HTTP answer carries for safety, the same-origin check of form posts, and an
access log that never records a secret (access codes, WeChat signatures, tokens)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from urllib.parse import quote, unquote_plus, urlsplit

from aiohttp import web, web_response
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Query parameters whose values are secrets or let a request be replayed.
SECRET_PARAMS = frozenset({"code", "signature", "msg_signature", "echostr", "nonce", "timestamp"})
REDACTED = "[redacted]"

# The pages use only same-origin stylesheets and scripts (upload progress); nothing inline,
# no eval, so injected markup cannot run.
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# A customer's file: nothing in it may run, load anything or reach our origin's cookies.
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
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


def download(name: str, content_type: str, data: bytes, *, inline: bool) -> web.Response:
    """A customer's file as an answer: shown in place only when `inline`, else a download.

    The name goes out RFC 6266 style: an ASCII fallback plus the UTF-8 original, so
    `照片.jpg` keeps its name and no quote or newline in it can break the header.
    """
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    disposition = (
        f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )
    # Stored text is always UTF-8 (the checks convert GB18030), so say so.
    charset = "utf-8" if content_type == "text/plain" else None
    resp = web.Response(body=data, content_type=content_type, charset=charset)
    resp.headers["Content-Disposition"] = disposition
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    # Private data, but a file never changes under its id: the browser may keep it.
    resp.headers["Cache-Control"] = "private, max-age=86400"
    return resp


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


class ClientAddress:
    """Who a request comes from, for counting: the peer, or the client a trusted proxy names.

    Behind a reverse proxy every peer is the proxy; only a proxy listed in
    `INTAKE_HUB_TRUSTED_PROXIES` is believed about `X-Forwarded-For`, read from the right
    (the entries a client wrote itself come first). An IPv6 client counts by its /64, the
    block one subscriber is given, or a new address per request would dodge every limit.
    """

    def __init__(self, trusted: Sequence[str] = ()) -> None:
        self._trusted = [ipaddress.ip_network(net) for net in trusted]
        self._warned = False

    def __call__(self, request: web.BaseRequest) -> str:
        """The counting key of the request's client (`203.0.113.7`, `2001:db8:1:2::/64`)."""
        peer = _address(request.remote)
        if peer is None:
            return request.remote or "-"
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded is not None and self._is_trusted(peer):
            for hop in reversed(forwarded.split(",")):
                named = _address(hop.strip())
                if named is None:
                    break
                peer = named
                if not self._is_trusted(named):
                    break
        elif forwarded is not None and not self._warned and (peer.is_private or peer.is_loopback):
            self._warned = True
            log.warning(
                "requests come through a proxy at %s that is not in INTAKE_HUB_TRUSTED_PROXIES:"
                " every client behind it counts as that one address for the rate limits",
                peer,
            )
        if isinstance(peer, ipaddress.IPv6Address):
            if peer.ipv4_mapped is not None:
                return str(peer.ipv4_mapped)
            return str(ipaddress.IPv6Network((peer, 64), strict=False))
        return str(peer)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in net for net in self._trusted)


def _address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
