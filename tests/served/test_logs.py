"""The access log of a real `serve`: paths are there, secrets from query, body and headers not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from intake_hub.webguard import redact
from tests.conftest import ADMIN_TOKEN, ROOT
from tests.served.conftest import Served, free_port

CODE_PROBE = "ZZQQ7788"  # a code-shaped value on a ticket number that does not exist
SIGNATURE = "5f3c9a1e0b7d42c6a8e9f10b2c3d4e5f6a7b8c9d"
TIMESTAMP = "1764755123"
NONCE = "n0nce77310"
ECHOSTR = "echo4455661234"
MSG_SIGNATURE = "msgsig9e8d7c6b5a"
ACCESS_TOKEN = "at-5566-secretish"
CLIENT_SECRET = "cs-9911-hidden"
BODY_TEXT = "body-marker-8832 the lid is cracked"
CONTACT = "body-contact-4471@example.com"


def _start_with_access_log(home: Path) -> tuple[Served, Path]:
    """`intake-hub serve` without `--quiet` (the access log on); its output goes to a file."""
    port = free_port()
    environ = os.environ | {
        "INTAKE_HUB_HOME": str(home),
        "INTAKE_HUB_HTTP_PORT": str(port),
        "INTAKE_HUB_ADMIN_TOKEN": ADMIN_TOKEN,
        "INTAKE_HUB_SECRET_KEY": "served-secret-0123456789abcdef",
    }
    log_path = home.parent / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake_hub.cli", "serve"],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", home)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}: {log_path}")
        try:
            with urllib.request.urlopen(served.url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return served, log_path
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"serve did not become ready: {log_path}")


def _request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request; any status is an answer, not an error."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_access_log_has_paths_but_no_secrets(tmp_path: Path) -> None:
    """Codes, WeChat signature/timestamp/nonce/echostr, tokens, bodies, Authorization: absent."""
    home = tmp_path / "home"
    served, log_path = _start_with_access_log(home)
    try:
        status, body = _request(
            served.url + "/api/v1/web/messages",
            json.dumps({"name": "Tom", "contact": CONTACT, "text": BODY_TEXT}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 202
        accepted = json.loads(body)
        number, code = accepted["ticket"], accepted["access_code"]
        assert _request(f"{served.url}/tickets/{number}?code={code}&lang=en")[0] == 200
        assert _request(f"{served.url}/tickets/0K3M7Q2X9HT?code={CODE_PROBE}")[0] == 404
        form = urllib.parse.urlencode({"name": "Tom", "contact": CONTACT, "text": BODY_TEXT})
        _request(served.url + "/?lang=en", form.encode())
        wechat = urllib.parse.urlencode(
            {
                "signature": SIGNATURE,
                "timestamp": TIMESTAMP,
                "nonce": NONCE,
                "echostr": ECHOSTR,
                "openid": "o-visible",
                "encrypt_type": "aes",
                "msg_signature": MSG_SIGNATURE,
            }
        )
        _request(f"{served.url}/hooks/wechat?{wechat}")
        _request(
            served.url + "/api/v1/tickets", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        _request(f"{served.url}/healthz?access_token={ACCESS_TOKEN}&Client_Secret={CLIENT_SECRET}")
    finally:
        assert served.stop() == 0
    log = log_path.read_text()

    for secret in (
        code,
        CODE_PROBE,
        SIGNATURE,
        TIMESTAMP,
        NONCE,
        ECHOSTR,
        MSG_SIGNATURE,
        ACCESS_TOKEN,
        CLIENT_SECRET,
        ADMIN_TOKEN,
        "served-secret-0123456789abcdef",
        "body-marker-8832",
        CONTACT,
    ):
        assert secret not in log, secret
    for line in (
        '"POST /api/v1/web/messages HTTP/1.1" 202',
        f'"GET /tickets/{number}?code=[redacted]&lang=en HTTP/1.1" 200',
        '"GET /tickets/0K3M7Q2X9HT?code=[redacted] HTTP/1.1" 404',
        '"POST /?lang=en HTTP/1.1"',
        '"GET /hooks/wechat?signature=[redacted]&timestamp=[redacted]&nonce=[redacted]'
        "&echostr=[redacted]&openid=o-visible&encrypt_type=aes&msg_signature=[redacted] HTTP/1.1",
        '"GET /api/v1/tickets HTTP/1.1" 200',
        '"GET /healthz?access_token=[redacted]&Client_Secret=[redacted] HTTP/1.1" 200',
    ):
        assert line in log, line


def test_redact_keeps_everything_but_secret_values() -> None:
    """Names, order, other values and a bare path stay; flags without `=` stay as they are."""
    assert redact("/a/b") == "/a/b"
    assert redact("/t/1?code=X&lang=zh&sent=1") == "/t/1?code=[redacted]&lang=zh&sent=1"
    assert redact("/x?MY%5FTOKEN=1&secret_key=2&flag") == (
        "/x?MY%5FTOKEN=[redacted]&secret_key=[redacted]&flag"
    )
    assert redact("/x?code=1&code=2") == "/x?code=[redacted]&code=[redacted]"
