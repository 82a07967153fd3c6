"""The connector contract, run over every registered channel: a new one passes it first.

Each channel brings a kit (tests/connectors/<type>/kit.py): an instance file, requests
its routes must answer, its golden payload pairs, and, when it can push, a way to offer
one delivery twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient

from intake_hub.access import Links
from intake_hub.app import OUTBOUND, create_app
from intake_hub.attachments import FileStore
from intake_hub.bus import codec
from intake_hub.config import Settings
from intake_hub.connectors.base import Connector, Core
from intake_hub.connectors.registry import REGISTRY, load_connectors
from intake_hub.envelope import Envelope
from intake_hub.metrics import Metrics
from intake_hub.ticketno import TicketNumbers
from intake_hub.webguard import ClientAddress
from tests.connectors.contract import Kit
from tests.connectors.email.kit import KIT as EMAIL
from tests.connectors.web.kit import KIT as WEB
from tests.connectors.webhook.kit import KIT as WEBHOOK
from tests.connectors.wechat.kit import KIT as WECHAT

KITS = {kit.type: kit for kit in (WEB, WEBHOOK, WECHAT, EMAIL)}
Client = TestClient  # type: ignore[type-arg]


def test_every_registered_connector_has_a_kit() -> None:
    """A channel in the registry without a kit would skip the contract: none may."""
    assert set(KITS) == set(REGISTRY)


@pytest.fixture(params=sorted(REGISTRY))
def kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    """Each registered channel's kit, its environment set."""
    found = KITS[request.param]
    for name, value in found.env.items():
        monkeypatch.setenv(name, value)
    return found


@pytest.fixture
def instance_dir(kit: Kit, tmp_path: Path) -> Path:
    """A connectors directory holding just the kit's instance file."""
    directory = tmp_path / "connectors"
    directory.mkdir()
    (directory / f"{kit.type}.yaml").write_text(kit.yaml)
    return directory


def _lent(tmp_path: Path) -> Core:
    async def emit(env: Envelope) -> None:
        raise AssertionError("created connectors emit nothing by themselves")

    async def request(env: Envelope, budget: float) -> None:
        raise AssertionError("created connectors emit nothing by themselves")

    async def status(number: str) -> None:
        return None

    async def file(number: str, attachment_id: UUID, thumb: bool) -> None:
        return None

    return Core(
        emit=emit,
        request=request,
        numbers=TicketNumbers(node=1000),
        links=Links("http://testserver", b"contract"),
        metrics=Metrics(),
        status=status,
        tickets_text=lambda tickets: None,
        limits=None,
        client=ClientAddress(),
        backlog=lambda: 0,
        files=FileStore(tmp_path / "attachments"),
        file=file,
    )


def _created(kit: Kit, instance_dir: Path, tmp_path: Path) -> Connector:
    [config] = load_connectors(instance_dir)
    return REGISTRY[kit.type].create(config, _lent(tmp_path))


def test_config_round_trips(kit: Kit, instance_dir: Path) -> None:
    """The instance file validates into the connector's Config, which round-trips unchanged."""
    [config] = load_connectors(instance_dir)
    cls = REGISTRY[kit.type]
    assert isinstance(config, cls.Config)
    assert (config.type, config.enabled) == (kit.type, True)
    assert cls.Config.model_validate(config.model_dump()) == config
    assert cls.Config.model_validate_json(config.model_dump_json()) == config


def test_golden_pairs_normalise_with_the_declared_identity(
    kit: Kit, instance_dir: Path, tmp_path: Path
) -> None:
    """Every recorded payload gives its expected envelope, naming the identity kind declared."""
    connector = _created(kit, instance_dir, tmp_path)
    assert connector.identity == kit.identity
    assert connector.source.startswith(f"{kit.type}/")
    pairs = list(kit.golden())
    assert pairs, "a channel brings at least one recorded payload"
    for env, expected in pairs:
        got = env.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        assert {k: got.get(k) for k in expected} == expected
        assert env.customer.identity == connector.identity
        assert codec.decode(codec.encode(env)) == env


async def test_routes_mount_start_and_stop_clean(
    kit: Kit,
    instance_dir: Path,
    settings: Settings,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    """On a real app its routes answer, and stopping leaves none of its tasks running."""
    before = asyncio.all_tasks()
    client = await aiohttp_client(create_app(replace(settings, connectors_dir=instance_dir)))
    for probe in kit.probes:
        resp = await client.request(probe.method, probe.path, json=probe.body)
        assert resp.status == probe.status, (probe, await resp.text())
    await client.close()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    assert not [t for t in left if not t.done()], left


async def test_outbound_sends_a_delivery_once(
    kit: Kit,
    instance_dir: Path,
    settings: Settings,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    """A channel that can push sends one delivery offered twice exactly once."""
    client = await aiohttp_client(create_app(replace(settings, connectors_dir=instance_dir)))
    ways_out = client.app[OUTBOUND]
    if kit.deliver_twice is None:
        assert ways_out == {}
        return
    assert set(ways_out) == {_created(kit, instance_dir, Path()).source}
    assert await kit.deliver_twice(client) == 1
