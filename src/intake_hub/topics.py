"""Routing keys and queue names: every name on the bus is made here."""

from __future__ import annotations

from intake_hub.envelope import Channel

EXCHANGE = "intake_hub"
RECEIVED_ANY = "ticket.received.*"


def received(channel: Channel) -> str:
    """The topic a connector publishes a new message of `channel` to."""
    return f"ticket.received.{channel}"


def stage_queue(stage: str) -> str:
    """The durable queue a stage consumes from."""
    return f"{EXCHANGE}.{stage}"


def reply_topic(node: str) -> str:
    """The topic carrying auto-replies back to the gateway process `node`."""
    return f"ticket.reply.{node}"


def reply_queue(node: str) -> str:
    """The short-lived queue of one gateway process's auto-replies."""
    return f"{EXCHANGE}.reply.{node}"
