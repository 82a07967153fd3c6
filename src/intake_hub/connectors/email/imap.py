"""A mailbox read over IMAP, for a shop that only has a mailbox: every mail once, in UID order.

Reading goes by UID, never by "unseen" or by date (helpdesks that fetched "unread since
yesterday" lost mail): the last UID handed over is stored with the mailbox's UIDVALIDITY,
and each pass takes `UID SEARCH UID last+1:*` in order. The stored UID moves only after
`receive` answered 250, so a crash or a 451 means the same mail again (Message-ID dedupe
makes that harmless), never a gap. A new UIDVALIDITY means the old UIDs mean nothing:
reading starts again from the first mail. Mail is fetched with `BODY.PEEK[]` and nothing
is ever stored, flagged or expunged: the merchant's mailbox looks as if nobody read it.

Between passes the reader IDLEs where the server offers it (re-issued before `idle_s`,
under the 29 minutes servers allow), else sleeps `poll_s`; a dropped connection is made
again with jittered backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aioimaplib  # type: ignore[import-untyped]

from intake_hub.connectors.email import imap_state
from intake_hub.connectors.email.config import ImapConfig
from intake_hub.connectors.email.imap_state import Position
from intake_hub.periodic import cancel

log = logging.getLogger(__name__)

# The hand-over of one raw mail; its SMTP-style reply ("250 ..." taken, "451 ..." later).
Receive = Callable[[bytes], Awaitable[str]]

# Waits after a failed pass or a held mail (seconds, jittered by +-20 %).
RETRY_S: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300)
# One command's answer (a fetch of a 25 MiB mail included).
TIMEOUT_S = 60.0

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_CONNECTION_TROUBLE = (OSError, TimeoutError, aioimaplib.AioImapException)


class ImapTrouble(Exception):
    """The server refused a step (login, SELECT, SEARCH, FETCH) or broke off; try again later."""


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, noticing `* n EXISTS` it would otherwise drop between commands."""

    new_mail = False

    def _untagged_response(self, line: bytes) -> Any:
        if line.rstrip().endswith(b"EXISTS"):
            self.new_mail = True
        return super()._untagged_response(line)


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """An IMAP4 client on `_Protocol`, optionally over TLS from the first byte."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(x for x in response.lines if isinstance(x, bytes))
        raise ImapTrouble(f"{what}: {response.result} {text.decode(errors='replace')}".strip())
    return response


def _search_uids(response: Any, after: int) -> list[int]:
    """UIDs from a `UID SEARCH` answer above `after`, ascending.

    `n:*` always matches the mailbox's highest UID even when it is below n, so that one
    comes back however far the mailbox was read; it is filtered out here.
    """
    found: set[int] = set()
    for line in response.lines:
        # aioimaplib hands over `* SEARCH 1 2 3` as `1 2 3`.
        words = line.removeprefix(b"SEARCH").split() if isinstance(line, bytes) else []
        if words and all(word.isdigit() for word in words):
            found.update(int(word) for word in words)
    return sorted(uid for uid in found if uid > after)


def _body(response: Any) -> bytes | None:
    """The raw mail in a `UID FETCH uid BODY.PEEK[]` answer; None if it is gone."""
    lines = list(response.lines)
    for i, line in enumerate(lines[:-1]):
        if isinstance(line, bytes) and b"BODY[]" in line:
            literal = lines[i + 1]
            if isinstance(literal, bytes | bytearray):
                return bytes(literal)
    return None


class ImapReader:
    """Reads one mailbox and hands each new mail to `receive`, in UID order, at least once."""

    def __init__(
        self,
        config: ImapConfig,
        instance: str,
        receive: Receive,
        *,
        retry_s: Sequence[float] = RETRY_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.config = config
        self.instance = instance
        self._receive = receive
        self._retry_s = tuple(retry_s)
        self._timeout_s = timeout_s
        self._client: Any = None
        self._lost = False
        self._held = False
        self._task: asyncio.Task[None] | None = None
        host, port = config.address
        self._where = f"{instance}: imap://{config.username}@{host}:{port}/{config.mailbox}"

    async def start(self) -> None:
        """Begin reading in the background: a pass at once, then IDLE or polls."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"imap/{self.instance}")

    async def stop(self) -> None:
        """Stop reading (a mail being handed over is given up, taken again next time); log out."""
        if self._task is not None:
            await cancel(self._task)
            self._task = None
        await self._drop(logout=True)

    async def run_once(self) -> int:
        """One pass over the mailbox (connecting if need be); returns how many mails were taken.

        Stops at the first mail `receive` does not answer 250; that mail is the first of
        the next pass.
        """
        client = await self._connect()
        selected = _ok(
            await client.select(aioimaplib.quoted(self.config.mailbox)),
            f"SELECT {self.config.mailbox}",
        )
        uidvalidity = self._uidvalidity(selected)
        # Mail arriving from here on is found by the search or noticed before IDLE.
        client.protocol.new_mail = False
        after = await self._start_uid(uidvalidity, selected)
        search = _ok(await client.uid_search(f"UID {after + 1}:*", charset=None), "UID SEARCH")
        self._held = False
        taken = 0
        for uid in _search_uids(search, after):
            fetched = _ok(
                await asyncio.wait_for(
                    client.uid("fetch", str(uid), "BODY.PEEK[]"), self._timeout_s
                ),
                f"UID FETCH {uid}",
            )
            raw = _body(fetched)
            if raw is None:
                # Expunged between the search and the fetch: nothing left to take.
                log.warning("%s: mail UID %d vanished before it was read", self._where, uid)
            else:
                reply = await self._receive(raw)
                if not reply.startswith("250"):
                    log.warning(
                        "%s: mail UID %d not taken (%s); again next pass", self._where, uid, reply
                    )
                    self._held = True
                    break
                taken += 1
            await imap_state.save(self.instance, self.config.mailbox, Position(uidvalidity, uid))
        if taken:
            log.info("%s: took %d mail(s)", self._where, taken)
        return taken

    def _uidnext(self, selected: Any) -> int:
        for line in selected.lines:
            found = _UIDNEXT.search(line) if isinstance(line, bytes) else None
            if found:
                return int(found.group(1))
        raise ImapTrouble(f"SELECT {self.config.mailbox}: the server gave no UIDNEXT")

    def _uidvalidity(self, selected: Any) -> int:
        for line in selected.lines:
            found = _UIDVALIDITY.search(line) if isinstance(line, bytes) else None
            if found:
                return int(found.group(1))
        raise ImapTrouble(f"SELECT {self.config.mailbox}: the server gave no UIDVALIDITY")

    async def _start_uid(self, uidvalidity: int, selected: Any) -> int:
        """The last UID taken under `uidvalidity`: 0 for a new validity; on the first start
        with `start_at: new`, the mailbox's highest UID so far."""
        at = await imap_state.position(self.instance, self.config.mailbox)
        if at is not None and at.uidvalidity == uidvalidity:
            return at.last_uid
        if at is None and self.config.start_at == "new":
            last = self._uidnext(selected) - 1
            log.info("%s: first start: taking mail from UID %d on", self._where, last + 1)
            await imap_state.save(self.instance, self.config.mailbox, Position(uidvalidity, last))
            return last
        if at is not None:
            log.warning(
                "%s: UIDVALIDITY changed from %d to %d (mailbox recreated or restored): "
                "reading it again from the first mail; mail already taken is recognised "
                "by its Message-ID",
                self._where,
                at.uidvalidity,
                uidvalidity,
            )
        await imap_state.save(self.instance, self.config.mailbox, Position(uidvalidity, 0))
        return 0

    async def _connect(self) -> Any:
        """The connected, logged-in client: the one from before if it still stands."""
        if self._client is not None and not self._lost:
            return self._client
        await self._drop(logout=False)
        host, port = self.config.address
        context = self._tls_context() if self.config.security == "tls" else None
        self._lost = False

        def lost(exc: Exception | None) -> None:
            self._lost = True
            # Wake an IDLE waiting for pushes that will never come.
            client.protocol.idle_queue.put_nowait(aioimaplib.STOP_WAIT_SERVER_PUSH)

        client = _Client(
            host, port, timeout=self._timeout_s, conn_lost_cb=lost, ssl_context=context
        )
        self._client = client
        await client.wait_hello_from_server()
        if self.config.security == "starttls":
            await self._starttls(client, host)
        _ok(
            await client.login(aioimaplib.quoted(self.config.username), self.config.password),
            f"LOGIN as {self.config.username}",
        )
        log.info("%s: logged in", self._where)
        return client

    def _tls_context(self) -> ssl.SSLContext:
        """How the server's certificate is checked: the system's trusted CAs and its name."""
        return ssl.create_default_context()

    async def _starttls(self, client: Any, host: str) -> None:
        """Upgrade the plain connection to TLS before anything secret is sent (RFC 2595)."""
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapTrouble("the server does not offer STARTTLS; refusing to log in in clear")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        _ok(await asyncio.wait_for(protocol.execute(command), self._timeout_s), "STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await asyncio.wait_for(
            loop.start_tls(protocol.transport, protocol, self._tls_context(), server_hostname=host),
            self._timeout_s,
        )
        protocol.transport = transport
        # What the server offered in clear is not to be trusted: ask again.
        await asyncio.wait_for(protocol.capability(), self._timeout_s)

    async def _drop(self, *, logout: bool) -> None:
        """Close the connection (logging out first when asked and possible)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if logout and not self._lost and client.get_state() in ("AUTH", "SELECTED"):
                if client.has_pending_idle():
                    client.idle_done()
                await asyncio.wait_for(client.logout(), 5)
        except (*_CONNECTION_TROUBLE, asyncio.CancelledError) as exc:
            log.debug("%s: logout failed: %s", self._where, exc)
        finally:
            waiter = getattr(client, "_idle_waiter", None)
            if waiter is not None:
                waiter.cancel()
            for task in (*client.tasks, *client.protocol.tasks, client._client_task):
                task.cancel()
            transport = client.protocol.transport
            if transport is not None:
                transport.close()

    async def _wait(self) -> None:
        """Until there may be new mail: an IDLE push or its time limit, else `poll_s`."""
        client = self._client
        if client is None or not client.has_capability("IDLE"):
            await asyncio.sleep(self.config.poll_s)
            return
        if client.protocol.new_mail:
            return
        idle = await client.idle_start(timeout=self.config.idle_s)
        while True:
            push = await client.wait_server_push(timeout=self.config.idle_s + self._timeout_s)
            if self._lost or any(b"BYE" in line for line in push if isinstance(line, bytes)):
                raise ImapTrouble("the server closed the connection")
            if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                break
            if any(isinstance(line, bytes) and line.endswith(b"EXISTS") for line in push):
                break
        client.idle_done()
        _ok(await asyncio.wait_for(idle, self._timeout_s), "IDLE")

    def _delay(self, failures: int) -> float:
        base = self._retry_s[min(failures, len(self._retry_s) - 1)]
        return base * random.uniform(0.8, 1.2)

    async def _loop(self) -> None:
        failures = 0
        held = 0
        while True:
            try:
                await self.run_once()
                failures = 0
                if self._held:
                    delay = self._delay(held)
                    held += 1
                    await asyncio.sleep(delay)
                    continue
                held = 0
                await self._wait()
            except (*_CONNECTION_TROUBLE, ImapTrouble) as exc:
                delay = self._delay(failures)
                failures += 1
                log.warning(
                    "%s: %s; connecting again in %.1f s",
                    self._where,
                    str(exc) or type(exc).__name__,
                    delay,
                )
                await self._drop(logout=False)
                await asyncio.sleep(delay)
            except Exception:
                delay = self._delay(failures)
                failures += 1
                log.exception("%s: pass failed; again in %.1f s", self._where, delay)
                await self._drop(logout=False)
                await asyncio.sleep(delay)
