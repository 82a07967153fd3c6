"""What one instance runs, built from the settings: bus, intake, stages and pipeline."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from intake_hub.access import Links
from intake_hub.attachments import AttachmentStore, open_store
from intake_hub.bus import Bus, MemoryBus, RetryPolicy, make_bus
from intake_hub.config import Settings
from intake_hub.metrics import Metrics
from intake_hub.rules import RuleSet, load_rules
from intake_hub.rules.reload import RulesReloader
from intake_hub.runtime.intake import Intake
from intake_hub.runtime.journal import keep_journal
from intake_hub.runtime.pipeline import Pipeline
from intake_hub.runtime.spool import Spool, Spooler, spool_path
from intake_hub.runtime.stageset import StageSet
from intake_hub.storage.roster import DbRoster
from intake_hub.storage.writer import TicketWriter
from intake_hub.ticketno import TicketNumbers


@dataclass
class Services:
    """The running parts one instance owns, started and stopped with the app."""

    settings: Settings
    bus: Bus
    intake: Intake
    pipeline: Pipeline
    writer: TicketWriter
    rules: RuleSet
    links: Links
    numbers: TicketNumbers
    stages: StageSet
    files: AttachmentStore
    reloader: RulesReloader | None = None


def add_spool(s: Services, metrics: Metrics) -> None:
    """Put the node's durable spool behind `Intake.emit`, so a 2xx means "on disk".

    Publishing to RabbitMQ, it holds messages only while the broker is away (`Spooler`);
    on the in-process bus it holds every message until persistence stored it (`Journal`).
    """
    bus = s.bus
    spool = Spool(spool_path(s.settings.home, s.numbers.node), s.settings.spool_max)
    metrics.spool_depth.set_function(lambda: spool.depth)
    if bus.durable:
        s.intake.spooler = Spooler(bus, spool, lambda: bus.connected)
    elif isinstance(bus, MemoryBus):
        keep_journal(bus, spool, s.intake, s.pipeline)


def build_services(settings: Settings, metrics: Metrics, run: Collection[str]) -> Services:
    """Everything one instance runs, built but not started (no network or database yet)."""
    rules = load_rules(settings.rules_dir)
    bus = make_bus(settings.amqp_url, prefetch=settings.concurrency)
    writer = TicketWriter(
        batch_size=settings.batch_size, followup_window=settings.followup_window_s
    )
    links = Links(settings.public_url, settings.resolved_secret())
    stages = StageSet(rules, links, DbRoster(), writer, metrics)
    intake = Intake(bus, lambda env: metrics.received.labels(env.channel).inc())
    pipeline = Pipeline(
        bus,
        stages.functions(),
        run=run,
        retry=RetryPolicy(settings.retry_delays),
        prefetch=settings.concurrency,
        metrics=metrics,
    )
    numbers = TicketNumbers.for_home(settings.home, settings.node_id)
    reloader = RulesReloader(settings.rules_dir, stages)
    files = open_store(settings.attachments_url, settings.home)
    return Services(
        settings, bus, intake, pipeline, writer, rules, links, numbers, stages, files, reloader
    )
