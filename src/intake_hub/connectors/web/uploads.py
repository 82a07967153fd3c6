"""Photos and files sent with a web message: read within limits, checked, stored first.

A multipart body is streamed part by part, so a file is refused at its limit without the
service holding more than that in memory, and the whole body is refused (413) once it
brings more than a message may hold (`body_limit`), announced or not: nothing past that
is read. A route that must decide something before the files (a reply's access code) is
called back when the first file begins, before any of its bytes are read. Each file is
checked (type from its content, images decoded and stripped of metadata) and written to
the attachment store before the message is accepted: a 202 means its files are on disk
too. A refused file refuses the message, with an error naming the file; the page comes
back with the text still in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from intake_hub.attachments import AttachmentStore, Refused, check
from intake_hub.envelope import AttachmentRef
from intake_hub.jsonapi import BadRequest, FieldError

FILE_FIELD = "attachments"
# A text field of the form is short; more is not a form someone filled in.
_MAX_FIELD_BYTES = 64 * 1024
# All text fields together: a handful of them, each far below its own limit.
_MAX_FIELDS = 64
_MAX_FIELDS_BYTES = 256 * 1024
# What a body may bring besides its files: the text fields and the parts' framing.
_FORM_OVERHEAD = 1024 * 1024
_CHUNK = 64 * 1024
_MB = 1024 * 1024

# Called with the text fields read so far when the first file begins; False stops there.
AtFiles = Callable[[dict[str, str]], bool]


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
    # The read stopped at the first file (`AtFiles` said so): `uploads` is empty.
    cut: bool = False


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


def body_limit(limits: UploadLimits) -> int:
    """The most bytes a multipart body may bring: the files of one message and its fields."""
    return limits.max_message_bytes + _FORM_OVERHEAD


def too_large(limits: UploadLimits) -> UploadRefused:
    """The refusal of a body larger than any message may be (413, about all the files)."""
    message = f"too_large: all files together {_too_large(limits.max_message_bytes)}"
    return UploadRefused(413, [FieldError(field=FILE_FIELD, message=message)])


def announced_too_large(request: web.BaseRequest, limits: UploadLimits) -> UploadRefused | None:
    """The 413 a multipart post gets from its Content-Length alone, before it is read."""
    length = request.content_length
    if request.content_type != "multipart/form-data" or length is None:
        return None
    return too_large(limits) if length > body_limit(limits) else None


class _OverLimit(Exception):
    """The body brought more than `body_limit`: the read stops here."""


@dataclass
class _Budget:
    """What the whole body may bring, counted as it arrives (part headers included)."""

    stream: StreamReader
    limit: int

    def check(self) -> None:
        # `total_bytes` counts what the connection has fed the body so far, read or not.
        if self.stream.total_bytes > self.limit:
            raise _OverLimit


async def _read_part(part: BodyPartReader, limit: int, budget: _Budget) -> bytes | None:
    """The part's bytes, or None once it is over `limit` (the rest is skipped, not kept)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        budget.check()
        size += len(chunk)
        if size > limit:
            await _skip(part, budget)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _skip(part: BodyPartReader, budget: _Budget) -> None:
    """Read the rest of `part` to the void, within the body's budget."""
    while await part.read_chunk(_CHUNK):
        budget.check()


async def read_form(
    request: web.Request, limits: UploadLimits, at_files: AtFiles | None = None
) -> FormPost:
    """The text fields and files of a form post, multipart or urlencoded.

    Files over the limits are skipped unread and named in `refused`; the text fields
    around them are still read, so the page can come back with them. A body over
    `body_limit` stops being read there and is refused as too large, with the fields
    read before it. `at_files` sees the fields before the first file's bytes are read: it
    may raise to refuse the post, or return False to stop reading there (`cut`).
    """
    if request.content_type != "multipart/form-data":
        form = await request.post()
        return FormPost({k: v for k, v in form.items() if isinstance(v, str)}, [])
    budget = _Budget(request.content, body_limit(limits))
    try:
        budget.check()
        return await _read_parts(await request.multipart(), limits, budget, at_files)
    except (HttpProcessingError, AssertionError, ValueError, KeyError):
        # aiohttp's multipart parser refuses malformed part headers with these.
        raise BadRequest(400, "invalid_body", "The multipart body cannot be read.") from None


async def _read_parts(
    reader: MultipartReader, limits: UploadLimits, budget: _Budget, at_files: AtFiles | None
) -> FormPost:
    values: dict[str, str] = {}
    uploads: list[Upload] = []
    errors: list[FieldError] = []
    total = 0
    fields = count = 0
    index = -1
    try:
        while (part := await reader.next()) is not None:
            budget.check()
            if not isinstance(part, BodyPartReader):
                raise BadRequest(400, "invalid_body", "Nested multipart bodies are not taken.")
            if part.filename is None:
                raw = await _read_part(part, _MAX_FIELD_BYTES, budget)
                if raw is None:
                    raise BadRequest(413, "too_large", f"The field {part.name!r} is too long.")
                fields, count = fields + len(raw), count + 1
                if fields > _MAX_FIELDS_BYTES or count > _MAX_FIELDS:
                    raise BadRequest(
                        413, "too_large", "The form's text fields are too many or too long."
                    )
                if part.name is not None:
                    values.setdefault(part.name, raw.decode("utf-8", errors="replace"))
                continue
            if at_files is not None:
                go_on, at_files = at_files(values), None
                if not go_on:
                    return FormPost(values, [], cut=True)
            if part.name != FILE_FIELD:
                await _skip(part, budget)
                continue
            data = await _read_part(part, limits.max_file_bytes, budget)
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
                        index,
                        "too_large",
                        f"all files together {_too_large(limits.max_message_bytes)}",
                    )
                )
            else:
                uploads.append(Upload(part.filename or None, data))
    except _OverLimit:
        return FormPost(values, [], too_large(limits))
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
