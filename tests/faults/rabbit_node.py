"""A private RabbitMQ node for one test, so the shared broker on 5672 is never stopped.

The node runs in the foreground as a child process with everything of its own under a
temporary directory: node name, AMQP and distribution ports, Mnesia and log directories,
an Erlang cookie (through HOME), an empty plugin list (no management listener on 15672)
and a config file (the system one pins the listener to 5672). The Debian wrappers in
/usr/sbin switch to the rabbitmq user when run as root, which would lose HOME and the
cookie, so the scripts under /usr/lib/rabbitmq/bin are used when they exist.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.served.conftest import free_port

BOOT_S = 40.0
CTL_S = 30.0
# rabbitmqctl takes its own distribution port from 35672-35682 (the default node's
# distribution port 25672 + 10000): a node listening there would collide with any CLI call.
CLI_PORTS = range(35672, 35683)


def _script(name: str) -> str:
    bundled = Path("/usr/lib/rabbitmq/bin") / name
    if bundled.exists():
        return str(bundled)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


def _port() -> int:
    while True:
        port = free_port()
        if port not in CLI_PORTS:
            return port


class RabbitNode:
    """One RabbitMQ node on loopback; `start`, `stop_app`, `start_app`, `stop`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.name = f"ih-fault-{secrets.token_hex(4)}@localhost"
        self.port = _port()
        self.dist_port = _port()
        self.proc: subprocess.Popen[bytes] | None = None
        home = base / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (base / "rabbitmq-env.conf").write_text("")
        self.log = base / "node.log"

    @property
    def url(self) -> str:
        """The AMQP URL of the node's default vhost."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return dict(os.environ) | {
            "HOME": str(self.base / "home"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, *args: str, timeout: float = CTL_S) -> subprocess.CompletedProcess[str]:
        """Run `rabbitmqctl -n <this node> <args>`, raising if it fails."""
        env = dict(os.environ) | {"HOME": str(self.base / "home")}
        env.pop("RABBITMQ_DIST_PORT", None)
        return subprocess.run(
            [_script("rabbitmqctl"), "-q", "-n", self.name, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def start(self) -> None:
        """Boot the node and wait until it accepts AMQP connections."""
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [_script("rabbitmq-server")],
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + BOOT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"RabbitMQ node exited:\n{self.log.read_text()[-3000:]}")
            try:
                # await_startup fails at once until the node has registered with epmd.
                self.ctl("await_startup", "--timeout", "10", timeout=15)
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"RabbitMQ node did not boot:\n{self.log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)

    def stop_app(self) -> None:
        """Stop RabbitMQ inside the running node: every client connection drops, the port closes."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start RabbitMQ again inside the node (durable queues and their messages come back)."""
        self.ctl("start_app")

    def stop(self) -> None:
        """Stop the node, killing its process group if it does not go quietly."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.ctl("stop", timeout=20)
                self.proc.wait(20)
            except (subprocess.SubprocessError, OSError):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
