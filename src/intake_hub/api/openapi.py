"""The OpenAPI document, made from the same pydantic models the handlers validate with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from intake_hub import __version__
from intake_hub.api.admin import (
    DeadLetterAction,
    DeadLetterPage,
    DeadLetterQuery,
    DeadLetterResult,
)
from intake_hub.api.assign import AssignIn
from intake_hub.api.handling import ReplyIn, StatusIn
from intake_hub.api.tickets import TicketQuery
from intake_hub.api.webhooks import AppEventPage, AppEventQuery, RedeliverOut
from intake_hub.jsonapi import (
    IDEMPOTENCY_KEY_PARAM,
    NUMBER_PARAM,
    ApiDoc,
    ErrorOut,
    error_responses,
    json_content,
    schema_ref,
)
from intake_hub.tickets.views import (
    AssignOut,
    ReplyOut,
    StatusOut,
    TicketDetail,
    TicketPage,
)

_MODELS: list[type[BaseModel]] = [
    TicketPage,
    TicketDetail,
    ErrorOut,
    DeadLetterPage,
    DeadLetterAction,
    DeadLetterResult,
    AssignIn,
    AssignOut,
    ReplyIn,
    ReplyOut,
    StatusIn,
    StatusOut,
    AppEventPage,
    RedeliverOut,
]
_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    DeadLetterAction,
    AssignIn,
    ReplyIn,
    StatusIn,
)


def _attachment(operation: str, summary: str) -> dict[str, Any]:
    """A download an agent may make of a file on a ticket they may read."""
    return {
        "get": {
            "summary": summary,
            "operationId": operation,
            "security": _BEARER,
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The file, with Content-Disposition and a sandboxing CSP",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                **error_responses(401, 404),
            },
        }
    }


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _ticket_action(
    operation: str,
    summary: str,
    body: type[BaseModel],
    out: tuple[str, type[BaseModel], str],
    headers: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    status, model, description = out
    return {
        "post": {
            "summary": summary,
            "operationId": operation,
            "security": _BEARER,
            "parameters": [NUMBER_PARAM, *headers],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema_ref(body)}},
            },
            "responses": {
                status: json_content(model, description),
                **error_responses(400, 401, 403, 404, 409, 415, 422),
            },
        }
    }


def _dead_letter_action(operation: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary + " (role admin; without ids: all, of the stage if given)",
            "operationId": operation,
            "security": _BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema_ref(DeadLetterAction)}},
            },
            "responses": {
                "200": json_content(DeadLetterResult, "How many, and the ids not found"),
                **error_responses(400, 401, 403, 415, 422),
            },
        }
    }


def openapi_document(parts: Sequence[ApiDoc] = ()) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document: the agent and admin API plus the connectors' `parts`."""
    requests = {*_REQUEST_MODELS, *(m for p in parts for m in p.requests)}
    models = [*_MODELS, *(m for p in parts for m in (*p.requests, *p.responses))]
    _, defs = models_json_schema(
        [(m, "validation" if m in requests else "serialization") for m in models],
        ref_template="#/components/schemas/{model}",
    )
    paths = _paths()
    for part in parts:
        for path, methods in part.paths.items():
            paths.setdefault(path, {}).update(methods)
    return {
        "openapi": "3.1.0",
        "info": {"title": "intake-hub", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _paths() -> dict[str, Any]:
    text_ok = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/api/v1/tickets/{number}/status": {
            **_ticket_action(
                "moveTicket",
                "Move a ticket on (agent of its team, or supervisor); the customer is told",
                StatusIn,
                ("200", StatusOut, "The status before and after"),
            ),
        },
        "/api/v1/tickets": {
            "get": {
                "summary": "List tickets, newest first",
                "operationId": "listTickets",
                "security": _BEARER,
                "parameters": _query_params(TicketQuery),
                "responses": {
                    "200": json_content(TicketPage, "One page"),
                    **error_responses(401, 422),
                },
            }
        },
        "/api/v1/tickets/{number}": {
            "get": {
                "summary": "One ticket with its customer and conversation",
                "operationId": "getTicket",
                "security": _BEARER,
                "parameters": [NUMBER_PARAM],
                "responses": {
                    "200": json_content(TicketDetail, "The ticket"),
                    **error_responses(401, 404),
                },
            }
        },
        "/api/v1/attachments/{id}": _attachment(
            "getAttachment", "A file sent with a message: inline if an image, PDF or text"
        ),
        "/api/v1/attachments/{id}/thumbnail": _attachment(
            "getAttachmentThumbnail", "A small JPEG or PNG preview of an image attachment"
        ),
        "/api/v1/tickets/{number}/assign": _ticket_action(
            "assignTicket",
            "Reassign a ticket by hand, with the reason (role supervisor)",
            AssignIn,
            ("200", AssignOut, "The new assignment"),
        ),
        "/api/v1/tickets/{number}/replies": _ticket_action(
            "replyToTicket",
            "Answer the customer: shown on the status page, pushed on WeChat",
            ReplyIn,
            ("201", ReplyOut, "The reply as stored, and how it reaches the customer"),
            (IDEMPOTENCY_KEY_PARAM,),
        ),
        "/api/v1/admin/dlq": {
            "get": {
                "summary": "Dead letters: messages a stage gave up on, with the reason",
                "operationId": "listDeadLetters",
                "security": _BEARER,
                "parameters": [
                    {
                        "name": "stage",
                        "in": "query",
                        "required": False,
                        "schema": DeadLetterQuery.model_json_schema()["properties"]["stage"][
                            "anyOf"
                        ][0],
                    }
                ],
                "responses": {
                    "200": json_content(DeadLetterPage, "The dead letters"),
                    **error_responses(401, 403, 422),
                },
            }
        },
        "/api/v1/admin/dlq/replay": _dead_letter_action(
            "replayDeadLetters",
            "Send dead letters through their stage again (after fixing the cause)",
        ),
        "/api/v1/admin/dlq/purge": _dead_letter_action(
            "purgeDeadLetters", "Drop dead letters for good"
        ),
        "/api/v1/admin/webhooks/events": {
            "get": {
                "summary": "Events to app backends: attempts, last status code, latency, next try",
                "operationId": "listAppEvents",
                "security": _BEARER,
                "parameters": _query_params(AppEventQuery),
                "responses": {
                    "200": json_content(AppEventPage, "Newest first"),
                    **error_responses(401, 403, 422),
                },
            }
        },
        "/api/v1/admin/webhooks/events/{webhook_id}/redeliver": {
            "post": {
                "summary": "Send an event to its app again, due now (role admin)",
                "operationId": "redeliverAppEvent",
                "security": _BEARER,
                "parameters": [
                    {
                        "name": "webhook_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": json_content(RedeliverOut, "Back in the queue"),
                    **error_responses(401, 403, 404),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "responses": {"200": {"description": "Alive"}},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness, naming what is degraded",
                "operationId": "readyz",
                "responses": {
                    "200": {"description": "Ready"},
                    "503": {"description": "Degraded"},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {"200": text_ok},
            }
        },
    }
