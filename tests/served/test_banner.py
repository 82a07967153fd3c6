"""No answer of a real `serve` names its software versions, not even aiohttp's own refusals."""

from __future__ import annotations

import socket
import urllib.request

from tests.served.conftest import Served


def _server_header(served: Served, raw: bytes) -> str:
    """The `Server` header of the answer to raw bytes sent on a fresh connection."""
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        head = conn.recv(4096).decode("latin-1").split("\r\n\r\n")[0]
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    return headers["Server"]


def test_no_version_banner_on_pages_or_malformed_requests(served: Served) -> None:
    """A page, a 404 and requests refused before routing all say only `intake-hub`."""
    with urllib.request.urlopen(served.url + "/", timeout=5) as resp:
        assert resp.headers["Server"] == "intake-hub"
    for raw in (
        b"GET /no/such/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"BROKEN\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
    ):
        assert _server_header(served, raw) == "intake-hub", raw
