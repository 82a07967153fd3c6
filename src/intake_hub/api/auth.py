"""Bearer-token authentication and role checks for the agent and admin API."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from intake_hub.jsonapi import BadRequest
from intake_hub.tickets.views import Principal

ROLES = ("agent", "supervisor", "admin")


TokenLookup = Callable[[str], Awaitable[Principal | None]]


# Far beyond any token we issue (43 characters) or a sane admin token; refused unread.
MAX_TOKEN_CHARS = 1024


class Authenticator:
    """Checks bearer tokens: the bootstrap admin token from the environment, then agents'.

    Agents' tokens are looked up in the database (one indexed read by hash, ~0.5 ms on
    SQLite, ~1.3 ms on PostgreSQL) and only a hit is remembered, for `ttl_s`: a disabled
    agent or a rotated-away token is refused by every process within that time, and a
    freshly issued token works at once because a miss is never cached.
    """

    def __init__(self, admin_token: str | None, lookup: TokenLookup, ttl_s: float = 0.5) -> None:
        self._admin = admin_token.encode() if admin_token else None
        self._lookup = lookup
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def principal(self, request: web.Request) -> Principal:
        """The caller, or a 401 when the token is missing or unknown."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Send an agent token as 'Authorization: Bearer <token>'.")
        if not _well_formed(token):
            raise _unauthorized("The token is malformed.")
        if self._admin is not None and hmac.compare_digest(token.encode(), self._admin):
            return Principal(login="admin", role="admin")
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        who = await self._lookup(token)
        if who is None:
            self._cache.pop(token, None)
            raise _unauthorized("The token is not valid.")
        if len(self._cache) >= 10_000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= 10_000:
                self._cache.clear()
        self._cache[token] = (now + self._ttl, who)
        return who

    async def require(self, request: web.Request, *roles: str) -> Principal:
        """The caller if they hold one of `roles` (any role when none given), else 401/403."""
        who = await self.principal(request)
        if roles and who.role not in roles:
            raise BadRequest(403, "forbidden", f"This needs the role {' or '.join(roles)}.")
        return who


def _well_formed(token: str) -> bool:
    """Whether a token is short, valid UTF-8 and free of control characters."""
    # Header bytes that are not UTF-8 arrive as lone surrogates (aiohttp's surrogateescape).
    return len(token) <= MAX_TOKEN_CHARS and token.isprintable() and " " not in token


def _unauthorized(message: str) -> BadRequest:
    exc = BadRequest(401, "unauthorized", message)
    exc.headers["WWW-Authenticate"] = 'Bearer realm="intake-hub"'
    return exc
