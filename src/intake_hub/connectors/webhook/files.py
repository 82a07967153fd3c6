"""Files an app's messages point to: fetched after the 202, only from the hosts allowed.

An app names its files by URL, and fetching a URL someone else wrote lets them aim our
server at its own network (server-side request forgery). So a URL is fetched only when
its host is on the instance's `attachment_hosts` and every address the host resolves to
is public. The check sits in the resolver the connection uses, so the address connected
to is the one checked: a second DNS answer (a rebind) never gets a say. Redirects are
followed by hand, each target checked again; the body is read only up to the limit.
Rows are leased like WeChat's media (connectors/wechat/media.py): one process fetches
each, a failure waits with backoff, and a day after the message the row gives up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from intake_hub.attachments import AttachmentStore, Refused, StoreUnavailable, check
from intake_hub.connectors.webhook.config import WebhookConfig
from intake_hub.periodic import Periodic
from intake_hub.storage import attachments as rows
from intake_hub.storage.attachments import Pending

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


class Later(Exception):
    """A fetch failed in a way that may pass: try again after a while."""


class Never(Exception):
    """A fetch that can never succeed (a 4xx, a redirect loop)."""


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


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class FileFetcher:
    """Polls one instance's pending attachments and stores each file once."""

    def __init__(self, config: WebhookConfig, files: AttachmentStore) -> None:
        self.config = config
        self._files = files
        self._source = f"webhook/{config.name}"
        self._schemes = ("https", "http") if config.allow_http else ("https",)
        # Longer than a fetch can take, so two processes never hold one row at once.
        self._hold = timedelta(seconds=TIMEOUT_S * 2 + 60)
        self._session: aiohttp.ClientSession | None = None
        self._poller = Periodic(
            f"webhook-files/{config.name}", config.attachment_poll_s, self.run_once
        )

    async def start(self) -> None:
        """Make the HTTP session and begin polling (the database is open by now)."""
        resolver = CheckedResolver(lookup(), allow_private=self.config.allow_private_addresses)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            # No cookies carried from one host to the next, no proxy from the environment.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        self._poller.start()

    async def stop(self) -> None:
        """Stop polling, handing any fetch in flight back, and close the session."""
        await self._poller.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run_once(self) -> int:
        """One pass: fetch every due file of the instance; returns how many were stored."""
        due = await rows.due(self._source, datetime.now(UTC))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(p: Pending) -> int:
            async with gate:
                return await self._take(p)

        return sum(await asyncio.gather(*(one(p) for p in due if p.kind == "remote")))

    async def _take(self, p: Pending) -> int:
        expires = _aware(p.received_at) + LIFETIME
        if expires < datetime.now(UTC):
            await self._give_up(p, "expired")
            return 0
        if not await rows.lease(p.id, p.attempts, self._hold):
            return 0
        try:
            return await self._fetch(p, expires)
        except asyncio.CancelledError:
            # Stopped mid-fetch: the next process may take the row at once.
            await rows.retry_at(p.id, datetime.now(UTC), "interrupted")
            raise

    async def _fetch(self, p: Pending, expires: datetime) -> int:
        limit = self.config.attachment_max_bytes
        try:
            async with asyncio.timeout(TIMEOUT_S):
                data, filename = await self.download(p.source_ref)
            # Re-encoding a large photo takes a while: not on the loop that answers apps.
            checked = await asyncio.to_thread(check, data, name=p.name or filename, max_bytes=limit)
            digest = await self._files.put(checked.data)
        except Blocked as exc:
            await self._give_up(p, f"refused: {exc}")
            return 0
        except Refused as exc:
            await self._give_up(p, f"{exc.reason}: {exc}")
            return 0
        except Never as exc:
            await self._give_up(p, str(exc))
            return 0
        except (Later, StoreUnavailable, aiohttp.ClientError, TimeoutError) as exc:
            await self._later(p, expires, str(exc) or type(exc).__name__)
            return 0
        await rows.fetched(p.id, digest, checked.name, checked.content_type, len(checked.data))
        log.info("%s: stored attachment %s (%d bytes)", self._source, p.id, len(checked.data))
        return 1

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

    async def download(self, url: str) -> tuple[bytes, str | None]:
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

    async def _give_up(self, p: Pending, error: str) -> None:
        log.warning("%s: attachment %s not fetched: %s", self._source, p.id, error)
        await rows.gave_up(p.id, error)

    async def _later(self, p: Pending, expires: datetime, error: str) -> None:
        delays = self.config.attachment_retry_s
        wait = delays[min(p.attempts, len(delays) - 1)] * random.uniform(0.8, 1.2)
        at = datetime.now(UTC) + timedelta(seconds=wait)
        if at > expires:
            await self._give_up(p, f"expired; last: {error}")
            return
        log.info("%s: attachment %s failed (%s), again in %.0fs", self._source, p.id, error, wait)
        await rows.retry_at(p.id, at, error)
