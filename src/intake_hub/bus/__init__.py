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
]
