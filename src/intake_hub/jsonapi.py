"""JSON over HTTP for every route: validated bodies in, one error shape out, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class FieldError(BaseModel):
    """One problem with one field of a request."""

    model_config = ConfigDict(extra="forbid")
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every 4xx answer has this shape."""

    model_config = ConfigDict(extra="forbid")
    error: str
    message: str
    fields: list[FieldError] = []


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    """A JSON answer rendered from a response model."""
    return web.Response(
        body=model.__pydantic_serializer__.to_json(model),
        status=status,
        content_type="application/json",
    )


def error_response(
    status: int,
    error: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The one shape of every error answer."""
    body = ErrorOut(error=error, message=message, fields=fields or [])
    resp = json_response(body, status)
    if headers:
        resp.headers.update(headers)
    return resp


class BadRequest(web.HTTPException):
    """Raised from a handler to answer with an `ErrorOut`."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status
        body = ErrorOut(error=error, message=message, fields=fields or [])
        super().__init__(
            text=body.model_dump_json(), content_type="application/json", headers=headers
        )


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One `FieldError` per problem, the field named by its dotted path."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(FieldError(field=loc, message=message))
    return out


def validate(model: type[M], data: Any) -> M:
    """Validate `data` against `model`, or raise a 422 naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(
            422, "invalid_fields", "Some fields are invalid.", field_errors(exc)
        ) from None


async def read_json(request: web.Request, model: type[M]) -> M:
    """Read, decode and validate a JSON body; every failure is a 4xx naming what is wrong."""
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise BadRequest(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = (
            "The body is not valid UTF-8."
            if "utf-8" in str(exc).lower()
            else (f"The body is not valid JSON: {exc}")
        )
        raise BadRequest(400, "invalid_json", message) from None
    if not isinstance(data, dict):
        raise BadRequest(
            422,
            "invalid_fields",
            "The body must be a JSON object.",
            [FieldError(field="body", message="expected an object")],
        )
    return validate(model, data)


@dataclass(frozen=True)
class ApiDoc:
    """A part of the OpenAPI document: paths, and the models they name by `schema_ref`."""

    paths: Mapping[str, Any]
    requests: tuple[type[BaseModel], ...] = ()
    responses: tuple[type[BaseModel], ...] = field(default=())


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """An OpenAPI reference to `model`'s schema under components."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_content(model: type[BaseModel], description: str) -> dict[str, Any]:
    """An OpenAPI response (or body) of `model` as JSON."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema_ref(model)}},
    }


# A ticket number in the path, as customers and agents write it (dashes and case ignored).
NUMBER_PARAM = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 20},
}

MAX_IDEMPOTENCY_KEY = 100


def idempotency_key_ok(key: str) -> bool:
    """Whether `key` is an acceptable `Idempotency-Key`: 1-100 printable characters."""
    return 0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()


def idempotency_key(request: web.Request) -> str | None:
    """The request's `Idempotency-Key`, or None; a malformed one is a 422 naming it."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not idempotency_key_ok(key):
        raise BadRequest(
            422,
            "invalid_fields",
            "The Idempotency-Key header is invalid.",
            [FieldError(field="Idempotency-Key", message="1-100 printable characters")],
        )
    return key


def key_reused(what: str) -> BadRequest:
    """The 422 for an `Idempotency-Key` sent before with another `what` (body, text)."""
    return BadRequest(
        422,
        "invalid_fields",
        f"The Idempotency-Key header was already used with another {what}.",
        [FieldError(field="Idempotency-Key", message=f"already used with another {what}")],
    )


def keyed_response(model: BaseModel, status: int, replayed: bool) -> web.Response:
    """The answer to a keyed request; a repeat says so in `Idempotent-Replayed`."""
    response = json_response(model, status)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


# A retried request with the same key stores nothing new and gets the first answer.
IDEMPOTENCY_KEY_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key and body answers the same; another body: 422",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}

_ERRORS = {
    400: "Malformed body",
    401: "Missing or invalid token",
    403: "The token lacks the role needed",
    404: "Not found",
    409: "Changed by someone else at the same moment; retry",
    413: "Body too large",
    415: "Not JSON",
    422: "Invalid fields",
    429: "Too many requests from this client; see Retry-After",
    503: "Busy or unavailable for the moment; see Retry-After",
}


def error_responses(*codes: int) -> dict[str, Any]:
    """The OpenAPI error answers for `codes`, each an `ErrorOut`."""
    return {str(c): json_content(ErrorOut, _ERRORS[c]) for c in codes}
