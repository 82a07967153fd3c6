"""The OpenAPI document, made from the same pydantic models the handlers validate with."""

from __future__ import annotations

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
from intake_hub.api.assign import AssignIn, AssignOut
from intake_hub.api.handling import ReplyIn, ReplyOut, StatusIn, StatusOut
from intake_hub.api.tickets import TicketQuery
from intake_hub.connectors.web.schemas import WebMessageAccepted, WebMessageIn
from intake_hub.jsonapi import ErrorOut
from intake_hub.tickets.views import TicketDetail, TicketPage, TicketStatus

_MODELS: list[type[BaseModel]] = [
    WebMessageIn,
    WebMessageAccepted,
    TicketStatus,
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
]
_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    WebMessageIn,
    DeadLetterAction,
    AssignIn,
    ReplyIn,
    StatusIn,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed body",
        401: "Missing or invalid token",
        403: "The token lacks the role needed",
        404: "Not found",
        409: "Changed by someone else at the same moment; retry",
        413: "Body too large",
        415: "Not JSON",
        422: "Invalid fields",
    }
    return {str(c): _json(ErrorOut, text[c]) for c in codes}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


_NUMBER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 20},
}
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
            "parameters": [_NUMBER, *headers],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(body)}},
            },
            "responses": {
                status: _json(model, description),
                **_errors(400, 401, 403, 404, 409, 415, 422),
            },
        }
    }


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key stores nothing new and answers the same",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}


def _dead_letter_action(operation: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary + " (role admin; without ids: all, of the stage if given)",
            "operationId": operation,
            "security": _BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(DeadLetterAction)}},
            },
            "responses": {
                "200": _json(DeadLetterResult, "How many, and the ids not found"),
                **_errors(400, 401, 403, 415, 422),
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of the public HTTP API."""
    _, defs = models_json_schema(
        [(m, "validation" if m in _REQUEST_MODELS else "serialization") for m in _MODELS],
        ref_template="#/components/schemas/{model}",
    )
    text_ok = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "intake-hub", "version": __version__},
        "paths": {
            "/api/v1/web/messages": {
                "post": {
                    "summary": "Take a customer's message from the web channel",
                    "operationId": "postWebMessage",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(WebMessageIn)}},
                    },
                    "responses": {
                        "202": _json(WebMessageAccepted, "Accepted: the ticket number"),
                        **_errors(400, 413, 415, 422),
                    },
                }
            },
            "/api/v1/tickets/{number}/status": {
                "get": {
                    "summary": "A ticket's status, for the customer holding its access code",
                    "operationId": "getTicketStatus",
                    "parameters": [
                        _NUMBER,
                        {
                            "name": "code",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 64},
                        },
                    ],
                    "responses": {"200": _json(TicketStatus, "The status"), **_errors(404)},
                },
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
                    "responses": {"200": _json(TicketPage, "One page"), **_errors(401, 422)},
                }
            },
            "/api/v1/tickets/{number}": {
                "get": {
                    "summary": "One ticket with its customer and conversation",
                    "operationId": "getTicket",
                    "security": _BEARER,
                    "parameters": [_NUMBER],
                    "responses": {"200": _json(TicketDetail, "The ticket"), **_errors(401, 404)},
                }
            },
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
                (_IDEMPOTENCY_KEY,),
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
                        "200": _json(DeadLetterPage, "The dead letters"),
                        **_errors(401, 403, 422),
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
        },
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
