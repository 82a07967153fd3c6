"""A real Dovecot IMAP server for the tests: loopback, plain text, one user, killed by pid."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
USER = "shop"
PASSWORD = "s3cret-imap-pass"

_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
instance_name = imap-test-{port}
listen = 127.0.0.1
protocols = imap
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
{users}first_valid_uid = 0
mail_location = maildir:{base}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Dovecot:
    """One Dovecot instance under a temp base directory; start, stop and restart it by pid."""

    base: Path
    port: int
    # Also implicit TLS on this port (and STARTTLS on `port`) with a self-signed certificate.
    tls_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def certificate(self) -> Path:
        """The self-signed certificate (for 127.0.0.1) a TLS test trusts."""
        return self.base / "cert.pem"

    def _ssl(self) -> str:
        if not self.tls_port:
            return "ssl = no\n"
        key = self.base / "key.pem"
        if not key.exists():
            request = ("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1")
            subject = ("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
            files = ("-keyout", str(key), "-out", str(self.certificate))
            subprocess.run(["openssl", *request, *subject, *files], check=True, capture_output=True)
        return f"ssl = yes\nssl_cert = <{self.certificate}\nssl_key = <{key}\n"

    @property
    def server(self) -> str:
        """The `host:port` an ImapConfig names."""
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        """Write dovecot.conf and the passwd-file for the test user; the config's path."""
        # As root, login processes must drop to Debian's own unprivileged users (the defaults);
        # as anyone else, every process runs as that user.
        user = pwd.getpwuid(os.getuid()).pw_name
        users = (
            ""
            if os.getuid() == 0
            else f"default_login_user = {user}\ndefault_internal_user = {user}\n"
        )
        # Mail is never kept as root (dovecot refuses uid 0): as root, Debian's dovenull owns it.
        owner = pwd.getpwnam("dovenull") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
        self.base.chmod(0o755)
        for sub in ("run", "state", "mail", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.base / sub, owner.pw_uid, owner.pw_gid)
        (self.base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        conf = self.base / "dovecot.conf"
        conf.write_text(
            _CONF.format(
                base=self.base,
                port=self.port,
                users=users,
                ssl=self._ssl(),
                tls_port=self.tls_port,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
            )
        )
        return conf

    def start(self, timeout: float = 20) -> None:
        """Run dovecot in the foreground (-F) as a child of the tests; wait until it answers."""
        conf = self.write_config()
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited ({self.proc.returncode}): {err}{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on {self.port}: {self.log()}")

    def stop(self) -> None:
        """Stop this dovecot (its master by pid; it takes its own children down), and wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
        # The master is gone; wait until the port is free of lingering login processes.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.1)

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> imaplib.IMAP4:
        """A logged-in stdlib client (blocking: use it from a worker thread in async tests)."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, raw: bytes, mailbox: str = "INBOX") -> int:
        """Deliver `raw` into `mailbox` with APPEND; the UID the server gave it."""
        imap = self.client()
        try:
            typ, data = imap.append(mailbox, "", None, raw)
            assert typ == "OK", data
            imap.select(mailbox)
            typ, found = imap.uid("SEARCH", "ALL")
            return int(found[0].split()[-1])
        finally:
            imap.logout()

    def recreate(self, mailbox: str) -> None:
        """Delete `mailbox` and make it anew: same name, a new UIDVALIDITY."""
        imap = self.client()
        try:
            if mailbox.upper() == "INBOX":
                raise ValueError("INBOX cannot be deleted; use another mailbox")
            imap.delete(mailbox)
            typ, data = imap.create(mailbox)
            assert typ == "OK", data
        finally:
            imap.logout()

    def create(self, mailbox: str) -> None:
        """Make `mailbox` (no error if it exists)."""
        imap = self.client()
        try:
            imap.create(mailbox)
        finally:
            imap.logout()

    def flags(self, mailbox: str = "INBOX") -> dict[int, str]:
        """Each message's flags by UID, read without changing anything (EXAMINE)."""
        imap = self.client()
        try:
            imap.select(mailbox, readonly=True)
            _, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
            found: dict[int, str] = {}
            for item in data:
                if not isinstance(item, bytes):
                    continue
                text = item.decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                found[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
            return found
        finally:
            imap.logout()


def available() -> bool:
    """Whether the Debian dovecot binary is installed (scripts/test-deps installs it)."""
    return os.access(DOVECOT, os.X_OK)


@contextmanager
def running(tls: bool = False) -> Iterator[Dovecot]:
    """A running Dovecot on a free loopback port under /tmp/imap-*; stopped by pid after."""
    server = stopped(tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


def stopped(tls: bool = False) -> Dovecot:
    """A Dovecot configured on a free port but not started (a server that is down)."""
    if not available():
        pytest.fail(f"{DOVECOT} is missing: run scripts/test-deps (Debian dovecot-imapd)")
    base = Path(tempfile.mkdtemp(prefix="imap-", dir="/tmp"))
    return Dovecot(base, free_port(), free_port() if tls else 0)
