"""Rendering the customer pages: Jinja2 with autoescaping always on."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from intake_hub.i18n import TEXTS, Lang, pick_lang

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("intake_hub", "templates"),
    autoescape=True,
    enable_async=False,
    undefined=jinja2.StrictUndefined,
)


def request_lang(request: web.Request) -> Lang:
    """The page language for this request."""
    return pick_lang(request.headers.get("Accept-Language"), request.query.get("lang"))


def render(
    request: web.Request, template: str, http_status: int = 200, **context: Any
) -> web.Response:
    """Render a page in the request's language."""
    lang = request_lang(request)
    html = _env.get_template(template).render(lang=lang, t=TEXTS[lang], **context)
    resp = web.Response(text=html, status=http_status, content_type="text/html")
    resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    resp.headers["Vary"] = "Accept-Language"
    return resp
