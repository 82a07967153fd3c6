"""aiosmtpd's SMTP protocol on the service's own event loop, with its session limits."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)

# Commands of one kind a session may send: enough for any mail, not for a flood of NOOPs.
COMMAND_CALL_LIMIT = 100
TOO_BIG = "552 5.3.4 Message too big for this system"
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections, try again later"
_REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


@dataclass(frozen=True)
class Limits:
    """What one client may take: size, idle and whole-session time, sessions at once."""

    max_bytes: int
    timeout_s: float
    max_session_s: float
    max_sessions: int


class _Session(SMTP):
    """One client's session, known to its listener so stopping can close it."""

    def __init__(
        self, handler: Any, sessions: set[_Session], limits: Limits, **options: Any
    ) -> None:
        super().__init__(handler, **options)
        self._sessions = sessions
        self._limits = limits
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Track the session, or refuse it (421) when the listener is full."""
        if len(self._sessions) >= self._limits.max_sessions:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_SESSIONS.encode() + b"\r\n")
            transport.close()
            return
        self._sessions.add(self)
        # The idle timeout restarts on every line: a client dripping a line a minute
        # must still end some time.
        self._deadline = self.loop.call_later(self._limits.max_session_s, transport.close)
        super().connection_made(transport)

    async def push(self, status: AnyStr) -> None:
        """Send a reply; aiosmtpd's size refusals get their enhanced status code."""
        if isinstance(status, str) and status.startswith("552 Error"):
            await super().push(TOO_BIG)
            return
        await super().push(status)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the session (nothing to do for one refused at the door)."""
        if self not in self._sessions:
            return
        self._sessions.discard(self)
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)


class Listener:
    """An SMTP server for `handler` (aiosmtpd hooks), started and stopped with the service."""

    def __init__(self, handler: Any, *, host: str, port: int, limits: Limits) -> None:
        self._handler = handler
        self._host, self._port = host, port
        self._limits = limits
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()

    @property
    def port(self) -> int:
        """The port listened on (the one picked when configured as 0)."""
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _session(self) -> _Session:
        # data_size_limit advertises SIZE and answers 552 past it; line lengths and the
        # idle timeout are aiosmtpd's, so a slow client cannot hold a session open.
        return _Session(
            self._handler,
            self._sessions,
            self._limits,
            data_size_limit=self._limits.max_bytes,
            timeout=self._limits.timeout_s,
            command_call_limit=COMMAND_CALL_LIMIT,
            enable_SMTPUTF8=True,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        """Listen on the configured host and port."""
        loop = asyncio.get_running_loop()
        # `serve` runs one process per core: the kernel shares the port out among them,
        # as it does the HTTP port.
        self._server = await loop.create_server(
            self._session, self._host, self._port, reuse_port=_REUSE_PORT
        )
        log.info("SMTP listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop listening and close the open sessions."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None
        # Let the closed sessions' handler tasks see their connection gone.
        for _ in range(3):
            await asyncio.sleep(0)
