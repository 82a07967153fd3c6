"""Agents' downloads of a ticket's files, under the same read scope as the ticket itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from intake_hub.api.auth import Authenticator
from intake_hub.attachments import AttachmentStore
from intake_hub.jsonapi import BadRequest
from intake_hub.tickets.attachments import for_agent
from intake_hub.webguard import download


@dataclass
class AttachmentApi:
    """`GET /api/v1/attachments/{id}` and its `/thumbnail`; a bearer token is needed."""

    auth: Authenticator
    files: AttachmentStore

    def routes(self) -> list[web.RouteDef]:
        """The routes, mounted by the app."""
        return [
            web.get("/api/v1/attachments/{id}", self.file),
            web.get("/api/v1/attachments/{id}/thumbnail", self.thumbnail),
        ]

    async def file(self, request: web.Request) -> web.Response:
        """The file as stored: inline for images, PDF and plain text, else a download."""
        return await self._serve(request, thumb=False)

    async def thumbnail(self, request: web.Request) -> web.Response:
        """A small JPEG or PNG preview of an image attachment, made once."""
        return await self._serve(request, thumb=True)

    async def _serve(self, request: web.Request, *, thumb: bool) -> web.Response:
        who = await self.auth.require(request)
        try:
            attachment_id = uuid.UUID(request.match_info["id"])
        except ValueError:
            attachment_id = None
        found = None
        if attachment_id is not None:
            found = await for_agent(self.files, attachment_id, who, thumb=thumb)
        if found is None:
            raise BadRequest(404, "not_found", "No attachment with this id.")
        return download(found.name, found.content_type, found.data, inline=found.inline)
