"""The app webhook in the OpenAPI document: one JSON Schema per event type."""

from __future__ import annotations

from typing import Any

from intake_hub.connectors.webhook.schemas import (
    CustomerAccepted,
    CustomerUpdated,
    MessageAccepted,
    MessageCreated,
)
from intake_hub.jsonapi import ApiDoc, error_responses, json_content, schema_ref


def _header(name: str, description: str, max_length: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": max_length},
    }


PARAMETERS = [
    {
        "name": "instance",
        "in": "path",
        "required": True,
        "description": "The instance's `name:` in connectors/ (shipped: `app`)",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,55}$"},
    },
    _header("webhook-id", "The event's id, the same on every retry: the dedupe key", 100),
    _header("webhook-timestamp", "Unix seconds; refused more than 5 minutes off", 12),
    _header(
        "webhook-signature",
        "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` entries",
        4096,
    ),
]

DOC = ApiDoc(
    paths={
        "/hooks/{instance}": {
            "post": {
                "summary": "An app backend's signed event (Standard Webhooks)",
                "description": (
                    "A `message.created` makes a ticket or joins the customer's open one "
                    "(202); a `customer.updated` records the profile (200). A retry with "
                    "the same `webhook-id` and body answers the same with "
                    "`Idempotent-Replayed: true`; another body under that id: 422."
                ),
                "operationId": "postAppWebhook",
                "parameters": PARAMETERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [schema_ref(MessageCreated), schema_ref(CustomerUpdated)],
                                "discriminator": {
                                    "propertyName": "type",
                                    "mapping": {
                                        "message.created": schema_ref(MessageCreated)["$ref"],
                                        "customer.updated": schema_ref(CustomerUpdated)["$ref"],
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": json_content(CustomerAccepted, "customer.updated: recorded"),
                    "202": json_content(MessageAccepted, "message.created: accepted"),
                    **error_responses(400, 401, 409, 413, 422),
                },
            }
        }
    },
    requests=(MessageCreated, CustomerUpdated),
    responses=(MessageAccepted, CustomerAccepted),
)
