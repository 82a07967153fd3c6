"""The message bus: one contract, an in-process and a RabbitMQ implementation."""

from intake_hub.bus.base import (
    ATTEMPT,
    BrokerUnreachable,
    Bus,
    BusError,
    Consumer,
    DeadLetter,
    Handler,
    QueueSpec,
    RetryPolicy,
    Unroutable,
)
from intake_hub.bus.memory import MemoryBus
from intake_hub.bus.rabbit import RabbitBus


def make_bus(amqp_url: str | None, *, prefetch: int = 64) -> Bus:
    """RabbitMQ when an AMQP URL is given, else the in-process bus."""
    return RabbitBus(amqp_url, prefetch=prefetch) if amqp_url else MemoryBus()


__all__ = [
    "ATTEMPT",
    "BrokerUnreachable",
    "Bus",
    "BusError",
    "Consumer",
    "DeadLetter",
    "Handler",
    "MemoryBus",
    "QueueSpec",
    "RabbitBus",
    "RetryPolicy",
    "Unroutable",
    "make_bus",
]
