"""Dead letters for operators: list, inspect, replay and purge, by CLI and by the admin API."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

import orjson
from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from intake_hub.api.auth import Authenticator
from intake_hub.api.ops import PEERS
from intake_hub.bus import Bus, DeadLetter
from intake_hub.jsonapi import json_response, read_json, validate
from intake_hub.stages import STAGE_NAMES, STAGES, StageSpec

TEXT_PREVIEW = 80
MAX_IDS = 1000


def _check_stage(value: str) -> str:
    if value not in STAGE_NAMES:
        raise ValueError(f"unknown stage; one of {', '.join(STAGE_NAMES)}")
    return value


StageName = Annotated[
    str,
    AfterValidator(_check_stage),
    WithJsonSchema({"type": "string", "enum": list(STAGE_NAMES)}),
]


class DeadLetterOut(BaseModel):
    """One parked message: why it failed, and enough of it to recognise."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Dead-letter id, for show, replay and purge")
    stage: str = Field(description="The stage that gave up on it")
    attempts: int = Field(description="Deliveries tried, the first one included")
    error: str = Field(description="The last error")
    dead_at: datetime
    envelope_id: str | None = Field(description="The envelope id, if the body could be read")
    ticket: str | None = Field(description="The ticket number made at intake")
    channel: str | None
    text: str = Field(description=f"The first {TEXT_PREVIEW} characters of the message")


class DeadLetterPage(BaseModel):
    """The dead letters of one stage or of every stage, oldest first per stage."""

    model_config = ConfigDict(extra="forbid")
    items: list[DeadLetterOut]


class DeadLetterQuery(BaseModel):
    """Filter of `GET /api/v1/admin/dlq`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    stage: StageName | None = None


class DeadLetterAction(BaseModel):
    """Which dead letters to replay or purge: those with `ids`, or all (of `stage`, if given)."""

    model_config = ConfigDict(extra="forbid")
    ids: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDS,
        description="Dead-letter ids; leave out for every dead letter in scope",
    )
    stage: StageName | None = None


class DeadLetterResult(BaseModel):
    """How many dead letters were acted on, and which of the ids asked for were not found."""

    model_config = ConfigDict(extra="forbid")
    count: int
    missing: list[str]


def describe(stage: str, dead: DeadLetter) -> DeadLetterOut:
    """The operator's view of a dead letter, from whatever of its body can be read."""
    envelope_id = ticket = channel = None
    text = dead.body.decode("utf-8", "replace")
    try:
        data = orjson.loads(dead.body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        envelope_id = _opt_str(data.get("id"))
        ticket = _opt_str(data.get("ticket"))
        channel = _opt_str(data.get("channel"))
        text = str(data.get("text", ""))
    return DeadLetterOut(
        id=dead.id,
        stage=stage,
        attempts=dead.attempts,
        error=dead.error,
        dead_at=dead.dead_at,
        envelope_id=envelope_id,
        ticket=ticket,
        channel=channel,
        text=text[:TEXT_PREVIEW],
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass
class DeadLetters:
    """The parking lots of every stage queue on one bus."""

    bus: Bus

    @staticmethod
    def stages(stage: str | None = None) -> list[StageSpec]:
        """Every stage, or just the one named."""
        return [s for s in STAGES if stage is None or s.name == stage]

    async def list(self, stage: str | None = None) -> list[DeadLetterOut]:
        """The dead letters of `stage` (or of every stage), in pipeline order, oldest first."""
        out: list[DeadLetterOut] = []
        for spec in self.stages(stage):
            out.extend(describe(spec.name, d) for d in await self.bus.dead_letters(spec.queue))
        return out

    async def find(self, dead_id: str) -> tuple[DeadLetterOut, bytes] | None:
        """One dead letter and its raw body, or None."""
        for spec in self.stages():
            for dead in await self.bus.dead_letters(spec.queue):
                if dead.id == dead_id:
                    return describe(spec.name, dead), dead.body
        return None

    async def replay(
        self, ids: Collection[str] | None = None, stage: str | None = None
    ) -> DeadLetterResult:
        """Send dead letters back to their stage with a fresh retry budget."""
        return await self._act(ids, stage, replay=True)

    async def purge(
        self, ids: Collection[str] | None = None, stage: str | None = None
    ) -> DeadLetterResult:
        """Drop dead letters for good."""
        return await self._act(ids, stage, replay=False)

    async def _act(
        self, ids: Collection[str] | None, stage: str | None, *, replay: bool
    ) -> DeadLetterResult:
        count = 0
        found: set[str] = set()
        for spec in self.stages(stage):
            chosen: set[str] | None = None
            if ids is not None:
                present = {d.id for d in await self.bus.dead_letters(spec.queue)}
                chosen = present & set(ids)
                if not chosen:
                    continue
                found |= chosen
            if replay:
                count += await self.bus.replay(spec.queue, chosen)
            else:
                count += await self.bus.purge_dead(spec.queue, chosen)
        missing = [] if ids is None else [i for i in dict.fromkeys(ids) if i not in found]
        return DeadLetterResult(count=count, missing=missing)


@dataclass
class AdminApi:
    """Admin routes; every one needs a bearer token with the role admin."""

    auth: Authenticator
    dead: DeadLetters

    def routes(self) -> list[web.RouteDef]:
        """The routes, mounted by the app."""
        return [
            web.get("/api/v1/admin/dlq", self.list),
            web.post("/api/v1/admin/dlq/replay", self.replay),
            web.post("/api/v1/admin/dlq/purge", self.purge),
        ]

    async def list(self, request: web.Request) -> web.Response:
        """`GET /api/v1/admin/dlq?stage=`: the dead letters, why they failed, what they were."""
        await self.auth.require(request, "admin")
        query = validate(DeadLetterQuery, {k: v for k, v in request.query.items() if v})
        items = await self.dead.list(query.stage)
        for body in await _siblings(request, None):
            items += DeadLetterPage.model_validate_json(body).items
        return json_response(DeadLetterPage(items=items))

    async def replay(self, request: web.Request) -> web.Response:
        """`POST /api/v1/admin/dlq/replay`: send dead letters through their stage again."""
        await self.auth.require(request, "admin")
        action = await read_json(request, DeadLetterAction)
        own = await self.dead.replay(action.ids, action.stage)
        return json_response(_together(own, await _siblings(request, action)))

    async def purge(self, request: web.Request) -> web.Response:
        """`POST /api/v1/admin/dlq/purge`: drop dead letters for good."""
        await self.auth.require(request, "admin")
        action = await read_json(request, DeadLetterAction)
        own = await self.dead.purge(action.ids, action.stage)
        return json_response(_together(own, await _siblings(request, action)))


async def _siblings(request: web.Request, action: DeadLetterAction | None) -> list[bytes]:
    """The same request to the other processes of this `serve` (each has its own bus)."""
    peers = request.app.get(PEERS)
    if peers is None or request.query.get("scope") == "process":
        return []
    path = f"{request.path}?{urlencode({**request.query, 'scope': 'process'})}"
    headers = {"Authorization": request.headers.get("Authorization", "")}
    if action is None:
        return await peers.get(path, headers)
    headers["Content-Type"] = "application/json"
    return await peers.ask("POST", path, headers, action.model_dump_json().encode())


def _together(own: DeadLetterResult, others: list[bytes]) -> DeadLetterResult:
    """One answer for all processes: every count, and the ids none of them had."""
    count, missing = own.count, set(own.missing)
    for body in others:
        result = DeadLetterResult.model_validate_json(body)
        count += result.count
        missing &= set(result.missing)
    return DeadLetterResult(count=count, missing=[i for i in own.missing if i in missing])
