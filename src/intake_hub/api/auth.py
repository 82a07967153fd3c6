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


class Authenticator:
    """Checks bearer tokens: the bootstrap admin token from the environment, then agents'."""

    def __init__(self, admin_token: str | None, lookup: TokenLookup, ttl_s: float = 30.0) -> None:
        self._admin = admin_token.encode() if admin_token else None
        self._lookup = lookup
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, request: web.Request) -> Principal:
        """The caller, or a 401 when the token is missing or unknown."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Send an agent token as 'Authorization: Bearer <token>'.")
        raw = token.encode("utf-8", "replace")
        if self._admin is not None and hmac.compare_digest(raw, self._admin):
            return Principal(login="admin", role="admin")
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is None or cached[0] < now:
            cached = (now + self._ttl, await self._lookup(token))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = cached
        if cached[1] is None:
            raise _unauthorized("The token is not valid.")
        return cached[1]

    async def require(self, request: web.Request, *roles: str) -> Principal:
        """The caller if they hold one of `roles` (any role when none given), else 401/403."""
        who = await self.principal(request)
        if roles and who.role not in roles:
            raise BadRequest(403, "forbidden", f"This needs the role {' or '.join(roles)}.")
        return who


def _unauthorized(message: str) -> BadRequest:
    exc = BadRequest(401, "unauthorized", message)
    exc.headers["WWW-Authenticate"] = 'Bearer realm="intake-hub"'
    return exc
