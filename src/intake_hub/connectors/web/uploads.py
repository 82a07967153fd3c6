"""Photos and files sent with a web message: read within limits, checked, stored first.

A multipart body is streamed part by part, so a file is refused at its limit without the
service holding more than that in memory. Each file is checked (type from its content,
images decoded and stripped of metadata) and written to the attachment store before the
message is accepted: a 202 means its files are on disk too. A refused file refuses the
message, with an error naming the file; the page comes back with the text still in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from intake_hub.attachments import AttachmentStore, Refused, check
from intake_hub.envelope import AttachmentRef
from intake_hub.jsonapi import BadRequest, FieldError

FILE_FIELD = "attachments"
# A text field of the form is short; more is not a form someone filled in.
_MAX_FIELD_BYTES = 64 * 1024
_CHUNK = 64 * 1024
_MB = 1024 * 1024


class UploadLimits(BaseModel):
    """`attachments:` in `connectors/web.yaml`: how many files, and how large."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_files: int = Field(default=5, ge=0, le=20, description="Files on one message")
    max_file_bytes: PositiveInt = 10 * _MB
    max_message_bytes: PositiveInt = 25 * _MB


@dataclass(frozen=True)
class FormPost:
    """A form post's text fields and files, and the files' refusal if any (text kept)."""

    values: dict[str, str]
    uploads: list[Upload]
    refused: UploadRefused | None = None


@dataclass(frozen=True)
class Upload:
    """One file as the browser sent it: its declared name (display only) and bytes."""

    name: str | None
    data: bytes


class UploadRefused(Exception):
    """The message cannot go with these files; `errors` names each file and why."""

    def __init__(self, status: int, errors: Sequence[FieldError]) -> None:
        super().__init__(errors[0].message if errors else "refused")
        self.status = status
        self.errors = list(errors)

    def as_json(self) -> BadRequest:
        """The API's answer: 413 or 422 with one field error per refused file."""
        error = "too_large" if self.status == 413 else "invalid_fields"
        return BadRequest(self.status, error, str(self), self.errors)


def _error(index: int, reason: str, message: str) -> FieldError:
    # `attachments.1`: the dotted path the JSON errors use; the message starts with the
    # reason (too_large, type, corrupt, empty, too_many) for the pages' wording.
    return FieldError(field=f"{FILE_FIELD}.{index}", message=f"{reason}: {message}")


async def _read_part(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None once it is over `limit` (the rest is skipped, not kept)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            await part.release()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: web.Request, limits: UploadLimits) -> FormPost:
    """The text fields and files of a form post, multipart or urlencoded.

    Files over the limits are skipped unread and named in `refused`; the text fields
    around them are still read, so the page can come back with them.
    """
    if request.content_type != "multipart/form-data":
        form = await request.post()
        return FormPost({k: v for k, v in form.items() if isinstance(v, str)}, [])
    try:
        return await _read_parts(await request.multipart(), limits)
    except (HttpProcessingError, AssertionError, ValueError, KeyError):
        # aiohttp's multipart parser refuses malformed part headers with these.
        raise BadRequest(400, "invalid_body", "The multipart body cannot be read.") from None


async def _read_parts(reader: MultipartReader, limits: UploadLimits) -> FormPost:
    values: dict[str, str] = {}
    uploads: list[Upload] = []
    errors: list[FieldError] = []
    total = 0
    index = -1
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise BadRequest(400, "invalid_body", "Nested multipart bodies are not taken.")
        if part.filename is None:
            raw = await _read_part(part, _MAX_FIELD_BYTES)
            if raw is None:
                raise BadRequest(413, "too_large", f"The field {part.name!r} is too long.")
            if part.name is not None:
                values.setdefault(part.name, raw.decode("utf-8", errors="replace"))
            continue
        if part.name != FILE_FIELD:
            await part.release()
            continue
        data = await _read_part(part, limits.max_file_bytes)
        if data == b"" and not part.filename:
            continue  # a file input left empty
        index += 1
        if data is None:
            errors.append(_error(index, "too_large", _too_large(limits.max_file_bytes)))
            continue
        total += len(data)
        if index >= limits.max_files:
            errors.append(
                _error(index, "too_many", f"at most {limits.max_files} files per message")
            )
        elif total > limits.max_message_bytes:
            errors.append(
                _error(
                    index, "too_large", f"all files together {_too_large(limits.max_message_bytes)}"
                )
            )
        else:
            uploads.append(Upload(part.filename or None, data))
    return FormPost(values, uploads, _refused(errors))


def _refused(errors: list[FieldError]) -> UploadRefused | None:
    if not errors:
        return None
    return UploadRefused(413 if any("too_large" in e.message for e in errors) else 422, errors)


def _too_large(limit: int) -> str:
    return f"larger than {limit / _MB:g} MB"


async def keep(
    store: AttachmentStore, uploads: Sequence[Upload], limits: UploadLimits
) -> tuple[AttachmentRef, ...]:
    """Check every upload and put it in the store; the references for the envelope.

    Every file is checked before any is stored, so a refused one leaves nothing behind.
    """
    checked = []
    errors: list[FieldError] = []
    for index, upload in enumerate(uploads):
        try:
            # Decoding and re-encoding a photo takes tens of milliseconds: off the loop.
            checked.append(
                await asyncio.to_thread(
                    check, upload.data, name=upload.name, max_bytes=limits.max_file_bytes
                )
            )
        except Refused as exc:
            errors.append(_error(index, exc.reason, str(exc)))
    if refused := _refused(errors):
        raise refused
    refs = []
    for c in checked:
        digest = await store.put(c.data)
        refs.append(
            AttachmentRef(
                kind="file", ref=digest, name=c.name, content_type=c.content_type, size=len(c.data)
            )
        )
    return tuple(refs)
