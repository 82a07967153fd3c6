"""Broker names, queue arguments, bindings and exported definitions of the specs (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aio_pika import ExchangeType

from intake_hub import topics
from intake_hub.bus.base import BusError, QueueSpec

EXCHANGE_TYPE = ExchangeType.TOPIC
QUEUE_DURABLE = True
FAST_SUFFIX = ".fast"
# Until the broker says otherwise: RabbitMQ 3's parking arguments are the safe default.
ASSUMED_MAJOR = 3


def delivery_limit_arguments(rabbitmq_major: int) -> dict[str, int]:
    """What a parking queue needs so the broker never drops a message over its delivery limit.

    RabbitMQ 4 gives quorum queues a default delivery limit of 20 and counts every requeue;
    -1 lifts it. RabbitMQ 3 has no limit by default and reads -1 as "drop at the first
    return", so there the argument must be left out.
    """
    return {"x-delivery-limit": -1} if rabbitmq_major >= 4 else {}


@dataclass(frozen=True)
class Names:
    """The broker queues behind one spec."""

    work: str
    dead: str
    fast: str
    tiers: tuple[str, ...]  # one per attempt that may still fail, tiers may repeat

    def declaration_order(self) -> tuple[str, ...]:
        """Every queue once, the parking queue first: the others dead-letter into it."""
        return (self.dead, *dict.fromkeys(self.tiers), self.work, self.fast)

    def ready_lanes(self) -> tuple[str, ...]:
        """The queues whose ready messages count as the spec's depth."""
        return (self.work, self.fast, *dict.fromkeys(self.tiers))


class Topology:
    """The registered specs under one namespace, and what the broker must hold for each."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.exchange = namespace + topics.EXCHANGE
        self.fast_exchange = self.exchange + FAST_SUFFIX
        self.specs: dict[str, QueueSpec] = {}
        # The connected broker's major version, which decides the parking queue's arguments.
        self.rabbitmq_major = ASSUMED_MAJOR

    def register(self, spec: QueueSpec) -> None:
        """Know `spec` (declaring it is the bus's business)."""
        self.specs[spec.name] = spec

    def spec(self, queue: str) -> QueueSpec:
        """The registered spec of `queue`; `BusError` if there is none."""
        spec = self.specs.get(queue)
        if spec is None:
            raise BusError(f"queue {queue!r} was not declared on this bus")
        return spec

    def names(self, queue: str) -> Names:
        """The broker queue names behind `queue`."""
        spec = self.spec(queue)
        work = self.namespace + spec.name
        tiers = tuple(f"{work}.retry.{round(d * 1000)}ms" for d in spec.retry.delays)
        return Names(work=work, dead=f"{work}.dead", fast=work + FAST_SUFFIX, tiers=tiers)

    def reply_queue(self, node: str, index: int) -> str:
        """The name of the `index`th listening queue of `node` (the first has no suffix)."""
        base = self.namespace + topics.reply_queue(node)
        return base if index == 0 else f"{base}.{index}"

    def queue_arguments(
        self, queue: str, *, rabbitmq_major: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """The arguments of every broker queue behind `queue`, by broker queue name."""
        names = self.names(queue)
        major = self.rabbitmq_major if rabbitmq_major is None else rabbitmq_major
        to_dead = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.dead,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        args: dict[str, dict[str, Any]] = {
            names.work: {"x-queue-type": "quorum", **to_dead},
            names.fast: {"x-queue-type": "quorum", **to_dead},
            names.dead: {"x-queue-type": "quorum", **delivery_limit_arguments(major)},
        }
        for tier, delay in zip(names.tiers, self.specs[queue].retry.delays, strict=True):
            args[tier] = {
                "x-queue-type": "quorum",
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.work,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        return args

    def bindings(self, queue: str) -> list[tuple[str, str, str]]:
        """(exchange, broker queue, routing key) of every binding behind `queue`."""
        names, keys = self.names(queue), self.specs[queue].bindings
        return [(self.exchange, names.work, key) for key in keys] + [
            (self.fast_exchange, names.fast, key) for key in keys
        ]

    def definitions(self, *, vhost: str = "/", rabbitmq_major: int = 4) -> dict[str, Any]:
        """RabbitMQ definitions (exchanges, queues, bindings) of every registered spec.

        The same arguments the bus declares, in the format `rabbitmqctl import_definitions`
        and the management plugin read.
        """
        queues: list[dict[str, Any]] = []
        bindings: list[dict[str, Any]] = []
        for spec in self.specs:
            declared = self.queue_arguments(spec, rabbitmq_major=rabbitmq_major)
            for name, arguments in declared.items():
                queues.append(
                    {
                        "name": name,
                        "vhost": vhost,
                        "durable": QUEUE_DURABLE,
                        "auto_delete": False,
                        "arguments": arguments,
                    }
                )
            for source, queue, key in self.bindings(spec):
                bindings.append(
                    {
                        "source": source,
                        "vhost": vhost,
                        "destination": queue,
                        "destination_type": "queue",
                        "routing_key": key,
                        "arguments": {},
                    }
                )
        exchanges: list[dict[str, Any]] = [
            {
                "name": name,
                "vhost": vhost,
                "type": EXCHANGE_TYPE.value,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in (self.exchange, self.fast_exchange)
        ]
        return {
            "vhosts": [{"name": vhost}],
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
        }
