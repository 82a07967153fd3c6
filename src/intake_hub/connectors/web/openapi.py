"""The web channel's JSON routes in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from intake_hub.connectors.web.schemas import (
    CustomerReplyAccepted,
    CustomerReplyIn,
    WebMessageAccepted,
    WebMessageIn,
)
from intake_hub.connectors.web.uploads import FILE_FIELD, UploadLimits
from intake_hub.jsonapi import (
    IDEMPOTENCY_KEY_PARAM,
    NUMBER_PARAM,
    ApiDoc,
    error_responses,
    json_content,
    schema_ref,
)
from intake_hub.tickets.views import TicketStatus


def _body(model: Any) -> dict[str, Any]:
    """JSON, or the same fields as a multipart form with photos and files."""
    fields = model.model_json_schema()
    form = {
        "type": "object",
        "properties": {
            **fields["properties"],
            FILE_FIELD: {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "maxItems": UploadLimits().max_files,
                "description": "Photos and files (repeat the field); limits in web.yaml",
            },
        },
        "required": fields.get("required", []),
    }
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema_ref(model)},
            "multipart/form-data": {"schema": form},
        },
    }


DOC = ApiDoc(
    paths={
        "/api/v1/web/messages": {
            "post": {
                "summary": "Take a customer's message from the web channel (a new ticket)",
                "operationId": "postWebMessage",
                "parameters": [IDEMPOTENCY_KEY_PARAM],
                "requestBody": _body(WebMessageIn),
                "responses": {
                    "202": json_content(WebMessageAccepted, "Accepted: the ticket number"),
                    **error_responses(400, 413, 415, 422, 429, 503),
                },
            }
        },
        "/api/v1/tickets/{number}/status": {
            "get": {
                "summary": "A ticket's status, for the customer holding its access code",
                "operationId": "getTicketStatus",
                "parameters": [
                    NUMBER_PARAM,
                    {
                        "name": "code",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 64},
                    },
                ],
                "responses": {
                    "200": json_content(TicketStatus, "The status"),
                    **error_responses(404, 429),
                },
            }
        },
        "/api/v1/tickets/{number}/messages": {
            "post": {
                "summary": "The customer continues their ticket's conversation (access code)",
                "operationId": "postCustomerMessage",
                "parameters": [NUMBER_PARAM],
                "requestBody": _body(CustomerReplyIn),
                "responses": {
                    "202": json_content(CustomerReplyAccepted, "Accepted onto the ticket"),
                    **error_responses(400, 404, 409, 413, 415, 422, 429, 503),
                },
            }
        },
    },
    requests=(WebMessageIn, CustomerReplyIn),
    responses=(WebMessageAccepted, CustomerReplyAccepted, TicketStatus),
)
