"""The robust connection to the broker, its two long-lived channels and the exchanges."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aiormq.exceptions import (
    AMQPChannelError,
    AMQPError,
    ChannelInvalidStateError,
    ProbableAuthenticationError,
)

from intake_hub.bus.base import BrokerUnreachable, BusError
from intake_hub.bus.rabbit.topology import ASSUMED_MAJOR, EXCHANGE_TYPE, Topology

RECONNECT_INTERVAL_S = 1.0

# A lost connection, a channel closed under us, or a confirm that never came: worth re-sending.
TRANSIENT = (ConnectionError, AMQPChannelError, ChannelInvalidStateError, TimeoutError)


class Link:
    """One robust connection: a confirmed publishing channel, a topology channel, the exchanges.

    Subscriptions open channels of their own on `connection`.
    """

    def __init__(self, url: str, node: str) -> None:
        self._url = url
        self._node = node
        self._conn: AbstractRobustConnection | None = None
        self._pub: AbstractChannel | None = None
        self._admin: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._fast: AbstractExchange | None = None

    async def open(self, topology: Topology) -> int:
        """Connect, open both channels, declare the exchanges; returns the broker's major version.

        Raises `BrokerUnreachable` when the first connection fails for any reason but
        refused credentials (those are a configuration error, not an outage).
        """
        try:
            self._conn = await aio_pika.connect_robust(
                self._url,
                reconnect_interval=RECONNECT_INTERVAL_S,
                client_properties={"connection_name": f"intake-hub/{self._node}"},
            )
        except ProbableAuthenticationError:
            raise
        except (AMQPError, OSError, TimeoutError) as exc:
            raise BrokerUnreachable(f"cannot connect to the broker: {exc!r}") from exc
        self._pub = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        self._admin = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._pub.declare_exchange(
            topology.exchange, EXCHANGE_TYPE, durable=True
        )
        self._fast = await self._pub.declare_exchange(
            topology.fast_exchange, EXCHANGE_TYPE, durable=True
        )
        return await self._server_major()

    async def _server_major(self) -> int:
        underlay = await self.admin.get_underlay_channel()
        version = underlay.connection.server_properties.get("version", "")
        if isinstance(version, bytes):
            version = version.decode()
        major = str(version).split(".", 1)[0]
        return int(major) if major.isdigit() else ASSUMED_MAJOR

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (False while `connect_robust` reconnects)."""
        return self._conn is not None and self._conn.connected.is_set()

    @property
    def connection(self) -> AbstractRobustConnection:
        """The connection, for channels of one's own."""
        if self._conn is None:
            raise BusError("RabbitBus.start() was not called")
        return self._conn

    @property
    def admin(self) -> AbstractChannel:
        """The channel that declares, deletes and counts queues."""
        if self._admin is None:
            raise BusError("RabbitBus.start() was not called")
        return self._admin

    @property
    def publishing(self) -> AbstractChannel:
        """The confirmed channel every publish goes through."""
        if self._pub is None:
            raise BusError("RabbitBus.start() was not called")
        return self._pub

    @property
    def exchange(self) -> AbstractExchange:
        """The topic exchange of ordinary messages."""
        if self._exchange is None:
            raise BusError("RabbitBus.start() was not called")
        return self._exchange

    @property
    def fast_exchange(self) -> AbstractExchange:
        """The topic exchange of messages someone waits on."""
        if self._fast is None:
            raise BusError("RabbitBus.start() was not called")
        return self._fast

    async def ready(self, queue: str) -> int:
        """Messages ready in the broker queue `queue` (a passive declare)."""
        admin = self.admin
        if not self.connected:
            # Without this the passive declare would wait for the reconnect.
            raise BrokerUnreachable("not connected to the broker")
        underlay = await admin.get_underlay_channel()
        ok = await underlay.queue_declare(queue, passive=True)
        return int(ok.message_count or 0)

    async def close(self) -> None:
        """Disconnect (a later `open` connects again)."""
        conn = self._conn
        self._conn = self._pub = self._admin = self._exchange = self._fast = None
        if conn is not None:
            await conn.close()
