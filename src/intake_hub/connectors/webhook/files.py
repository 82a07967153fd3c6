"""Files an app's messages point to: fetched after the 202, only from the hosts allowed.

An app names its files by URL, and fetching a URL someone else wrote lets them aim our
server at its own network (server-side request forgery). So a URL is fetched only when
its host is on the instance's `attachment_hosts` and every address the host resolves to
is public. The check sits in the resolver the connection uses, so the address connected
to is the one checked: a second DNS answer (a rebind) never gets a say. Redirects are
followed by hand, each target checked again; the body is read only up to the limit.
Leasing, backoff and storing are the shared loop of `tickets/fetching.py`; a day after the
message the row gives up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from intake_hub.attachments import AttachmentStore, Refused
from intake_hub.connectors.webhook.config import WebhookConfig
from intake_hub.storage.attachments import Pending
from intake_hub.tickets.fetching import Fetched, Later, Never, Pacing, PendingFiles

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
MAX_REDIRECTS = 3
LIFETIME = timedelta(hours=24)
CONCURRENCY = 4
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Client errors that say "not now" rather than "never".
RETRIED = frozenset({408, 425, 429})
# How host names are looked up; every answer is checked (tests swap in a fixed table).
lookup: Callable[[], AbstractResolver] = aiohttp.DefaultResolver


class Blocked(Exception):
    """A URL or address the instance will not fetch from; str(exc) says why."""


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether `host` is one of `patterns` or a subdomain of a `*.name` pattern."""
    host = host.lower().rstrip(".")
    return any(host.endswith(p[1:]) if p.startswith("*.") else host == p for p in patterns)


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why we do not connect to `address` (e.g. "loopback"), or None when it is fine."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unparseable"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # Link-local holds the cloud metadata endpoint (169.254.169.254): never, even if private
    # addresses are allowed.
    for why, hit in (
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if hit:
            return why
    if allow_private:
        return None
    if ip.is_loopback:
        return "loopback"
    if ip.is_private:
        return "private"
    return None if ip.is_global else "non-public"


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class CheckedResolver(AbstractResolver):
    """Resolves through `inner` and refuses a host if any of its addresses is not allowed."""

    def __init__(self, inner: AbstractResolver, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses aiohttp connects to, each checked; Blocked if one is refused."""
        found = await self._inner.resolve(host, port, family)
        for result in found:
            why = address_refusal(result["host"], allow_private=self._allow_private)
            if why is not None:
                raise Blocked(f"{host} resolves to a {why} address ({result['host']})")
        return found

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


class FileFetcher(PendingFiles):
    """Polls one instance's pending attachments and stores each file once."""

    def __init__(self, config: WebhookConfig, files: AttachmentStore) -> None:
        pacing = Pacing(
            poll_s=config.attachment_poll_s,
            retry_s=config.attachment_retry_s,
            hold=timedelta(seconds=TIMEOUT_S * 2 + 60),
            lifetime=LIFETIME,
            max_bytes=config.attachment_max_bytes,
        )
        super().__init__(f"webhook/{config.name}", files, pacing)
        self.config = config
        self._schemes = ("https", "http") if config.allow_http else ("https",)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Make the HTTP session whose resolver checks every address."""
        resolver = CheckedResolver(lookup(), allow_private=self.config.allow_private_addresses)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            # No cookies carried from one host to the next, no proxy from the environment.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wanted(self, p: Pending) -> bool:
        """Rows naming a URL of the app's."""
        return p.kind == "remote"

    async def download(self, p: Pending) -> Fetched:
        """The file at the row's URL, within the time limit; a refused URL never passes."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                data, filename = await self.fetch_url(p.source_ref)
        except Blocked as exc:
            raise Never(f"refused: {exc}") from None
        return Fetched(data, filename)

    def _vet(self, url: URL) -> None:
        """Blocked unless `url` may be fetched: its scheme, its host, a literal address."""
        if url.scheme not in self._schemes:
            raise Blocked(f"{url.scheme or 'relative'} URL")
        host = (url.host or "").lower().rstrip(".")
        if not host_allowed(host, self.config.attachment_hosts):
            raise Blocked(f"host {host or '(none)'} is not in attachment_hosts")
        # aiohttp connects to an address literal without asking the resolver.
        allow = self.config.allow_private_addresses
        if _literal(host) and (why := address_refusal(host, allow_private=allow)):
            raise Blocked(f"{host} is a {why} address")

    async def fetch_url(self, url: str) -> tuple[bytes, str | None]:
        """The file at `url` and the name its server gave, redirects checked hop by hop."""
        assert self._session is not None, "start() first"
        current = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            self._vet(current)
            async with self._session.get(current, allow_redirects=False) as resp:
                if resp.status in REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise Never(f"HTTP {resp.status} without a Location")
                    current = current.join(URL(location))
                    continue
                if resp.status >= 500 or resp.status in RETRIED:
                    raise Later(f"HTTP {resp.status}")
                if resp.status != 200:
                    raise Never(f"HTTP {resp.status}")
                disposition = resp.content_disposition
                return await self._read(resp), disposition.filename if disposition else None
        raise Never(f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.config.attachment_max_bytes
        too_large = Refused("too_large", f"The file is over {limit} bytes.")
        if (resp.content_length or 0) > limit:
            raise too_large
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            buf += chunk
            if len(buf) > limit:
                raise too_large
        return bytes(buf)
