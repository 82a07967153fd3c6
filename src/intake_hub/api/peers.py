"""The other processes of one `serve`: each answers on a Unix socket of its own under HOME,
so whichever process a scrape lands on can answer for all of them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import aiohttp

log = logging.getLogger(__name__)

PEER_TIMEOUT_S = 2.0
# sun_path holds 108 bytes; a deep HOME gets a private directory under the temp dir.
_MAX_SOCKET_PATH = 100


def run_dir(home: Path) -> Path:
    """Where the processes of the `serve` on `home` put their sockets (made 0700)."""
    directory = home.resolve() / "run"
    if len(str(directory)) + len("/serve-1023.sock") > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
        directory = Path(tempfile.gettempdir()) / f"intake-hub-{digest}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def socket_path(home: Path, node: int) -> Path:
    """The socket of the process holding ticket-number slot `node`."""
    return run_dir(home) / f"serve-{node}.sock"


class Peers:
    """The sibling processes' sockets, found afresh on each call (they come and go)."""

    def __init__(self, home: Path, own: Path) -> None:
        self._dir = run_dir(home)
        self._own = own

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> list[bytes]:
        """GET `path` from every live sibling; one that does not answer in time is left out."""
        return await self.ask("GET", path, headers)

    async def ask(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> list[bytes]:
        """Send one request to every live sibling; the bodies of their 2xx answers."""
        sockets = [p for p in self._dir.glob("serve-*.sock") if p != self._own]
        answers = await asyncio.gather(
            *(self._ask(sock, method, path, headers, body) for sock in sockets)
        )
        return [a for a in answers if a is not None]

    async def _ask(
        self,
        sock: Path,
        method: str,
        path: str,
        headers: Mapping[str, str] | None,
        body: bytes | None,
    ) -> bytes | None:
        timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
        try:
            connector = aiohttp.UnixConnector(path=str(sock))
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                session.request(method, f"http://peer{path}", headers=headers, data=body) as resp,
            ):
                resp.raise_for_status()
                return await resp.read()
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            # A process that died leaves its socket file behind until it is started again.
            log.debug("peer %s did not answer: %r", sock.name, exc)
            return None
