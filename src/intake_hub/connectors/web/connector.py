"""The web channel: the form page and its JSON API, and the customer's status page.

A web contact is only claimed (anyone can type anyone's address), so a form message
always starts its own ticket; the status page, which needs the ticket's access code, is
where a customer continues the conversation (docs/architecture.md, trust model).

Every post is first judged on what its URL and headers say: the same-site check, an
announced size over the message limit (413), the client's address token and, on a
ticket's routes, the code-guess buckets (429), all before a byte of its body is read. A
reply's access code comes in the body; the status page's box sends it before the files,
so a wrong one is refused before any file is read.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Self

from aiohttp import web
from pydantic import BaseModel, ValidationError

from intake_hub import ticketno
from intake_hub.access import check_code, quoted_proof
from intake_hub.connectors.base import ConnectorConfig, Core
from intake_hub.connectors.web import openapi
from intake_hub.connectors.web.limits import Held, Throttled, WebGuard, WebLimits
from intake_hub.connectors.web.normalize import customer_ref, reply_envelope, to_envelope
from intake_hub.connectors.web.schemas import (
    CustomerReplyAccepted,
    CustomerReplyIn,
    WebMessageAccepted,
    WebMessageIn,
)
from intake_hub.connectors.web.uploads import (
    FILE_FIELD,
    AtFiles,
    Upload,
    UploadLimits,
    UploadRefused,
    announced_too_large,
    keep,
    read_form,
)
from intake_hub.envelope import AttachmentRef, Envelope, Identity
from intake_hub.i18n import TEXTS, wait_text
from intake_hub.ids import uuid7
from intake_hub.jsonapi import (
    ApiDoc,
    BadRequest,
    FieldError,
    M,
    field_errors,
    idempotency_key,
    idempotency_key_ok,
    json_response,
    key_reused,
    keyed_response,
    read_json,
    validate,
)
from intake_hub.pages import render, request_lang
from intake_hub.periodic import Periodic
from intake_hub.storage.webkeys import Claim, WebKeys
from intake_hub.tickets.errors import KeyReused
from intake_hub.tickets.outbound import Outbound
from intake_hub.tickets.views import TicketStatus
from intake_hub.webguard import cross_site, download

log = logging.getLogger(__name__)


class WebConfig(ConnectorConfig):
    """`connectors/web.yaml`: the instance name (used as the envelope source) and its limits."""

    type: Literal["web"] = "web"
    name: str = "web"
    limits: WebLimits = WebLimits()
    attachments: UploadLimits = UploadLimits()


# Namespace of the envelope ids of keyed messages (UUIDv5 of instance, key and ticket).
_KEYED = uuid.UUID("6f1d8c3e-2b7a-5e41-9c0d-4a8e7b3f1d25")
_KEY_FIELD = "idempotency_key"
# A double click, a resubmit or a client's retry comes within minutes; a day is ample.
KEY_RETENTION = timedelta(days=1)
PRUNE_EVERY_S = 3600.0


class NotYetStored(Exception):
    """The ticket's first message is still on its way in: a reply could not join it yet."""


class _Closed(Exception):
    """The access code read from the body does not open the path's ticket."""


# A post refused on its URL and headers alone, before its body is read.
Early = Throttled | UploadRefused


# Errors of the reply box, worded by the page in the customer's language (i18n keys).
_NOT_YET = FieldError(field="text", message="not_yet_stored")
_INVALID = FieldError(field="text", message="reply_invalid")


@dataclass
class WebConnector:
    """Takes customer messages from the web form and the JSON API, and shows ticket status."""

    config: WebConfig
    core: Core
    keys: WebKeys = field(default_factory=WebKeys)
    _pruner: Periodic = field(init=False)
    _guard: WebGuard = field(init=False)

    Config: ClassVar[type[ConnectorConfig]] = WebConfig
    type: ClassVar[str] = "web"

    def __post_init__(self) -> None:
        self._pruner = Periodic(f"{self.source} key pruning", PRUNE_EVERY_S, self._prune)
        self._guard = WebGuard(self.source, self.config.limits, self.core)

    @classmethod
    def create(cls, config: ConnectorConfig, core: Core) -> Self:
        """The web channel for `config`."""
        assert isinstance(config, WebConfig)
        return cls(config, core)

    @property
    def source(self) -> str:
        """`web/<name>`."""
        return f"web/{self.config.name}"

    @property
    def identity(self) -> Identity:
        """Claimed: the contact is whatever the sender typed."""
        return "claimed"

    @property
    def outbound(self) -> Outbound | None:
        """None: the status page is how a web customer reads our answers."""
        return None

    def openapi(self) -> ApiDoc:
        """The JSON routes: post a message, read a ticket's status, continue its conversation."""
        return openapi.DOC

    def routes(self) -> Sequence[web.RouteDef]:
        """The channel's routes, mounted by the app."""
        return [
            web.get("/", self.form_page),
            web.post("/", self.form_submit),
            web.post("/api/v1/web/messages", self.api_submit),
            web.get("/tickets/{number}", self.status_page),
            web.post("/tickets/{number}/replies", self.reply_submit),
            web.get("/api/v1/tickets/{number}/status", self.api_status),
            web.post("/api/v1/tickets/{number}/messages", self.api_reply),
            web.get("/tickets/{number}/attachments/{id}", self.attachment),
            web.get("/tickets/{number}/attachments/{id}/thumbnail", self.attachment_thumbnail),
        ]

    async def start(self) -> None:
        """Forget old idempotency keys now and hourly."""
        self._pruner.start()

    async def stop(self) -> None:
        """Stop pruning."""
        await self._pruner.stop()

    async def _prune(self) -> None:
        before = datetime.now(UTC) - KEY_RETENTION
        if gone := await self.keys.prune(self.config.name, before):
            log.info("%s: forgot %d old idempotency keys", self.source, gone)

    async def _emit(self, env: Envelope, started: float) -> None:
        await self.core.emit(env)
        self.core.metrics.intake_latency.labels("web").observe(time.perf_counter() - started)

    def _accepted(self, number: str) -> WebMessageAccepted:
        links = self.core.links
        code = links.code(number)
        return WebMessageAccepted(
            ticket=number, access_code=code, status_url=links.status_url(number, code)
        )

    async def _accept(
        self,
        msg: WebMessageIn,
        started: float,
        key: str | None = None,
        files: tuple[AttachmentRef, ...] = (),
    ) -> tuple[WebMessageAccepted, bool]:
        """Emit the message as a new ticket; (answer, replayed). A known key answers as before.

        Keys are scoped by instance only (web clients are anonymous), so the stored answer
        goes only to a request with the identical body: whoever could send that body knows
        what the answer would tell them. Another body under the key raises `KeyReused`.
        """
        number = self.core.numbers.next()
        env_id = uuid7()
        mine = Claim(number, _body_hash(msg, files))
        if key is not None:
            held = await self.keys.claim(self.config.name, key, mine)
            if held.body_hash != mine.body_hash:
                raise KeyReused(key)
            if held.ticket != number:
                return self._accepted(held.ticket), True
            # The same claim emitted twice (a publish retried) is one envelope to persistence.
            env_id = uuid.uuid5(_KEYED, f"{self.source}:{key}:{number}")
        quoted = quoted_proof(self.core.links.secret, f"{msg.subject or ''}\n{msg.text}")
        env = to_envelope(
            msg,
            env_id=env_id,
            ticket=number,
            received_at=datetime.now(UTC),
            source=self.source,
            proven=quoted,
            attachments=files,
        )
        try:
            await self._emit(env, started)
        except Exception:
            # Not accepted: the key must not keep answering with a ticket that never comes.
            if key is not None:
                await self._release(key, mine)
            raise
        return self._accepted(number), False

    async def _release(self, key: str, claim: Claim) -> None:
        try:
            await self.keys.release(self.config.name, key, claim)
        except Exception:
            log.exception("web/%s: releasing an idempotency key failed", self.config.name)

    async def api_submit(self, request: web.Request) -> web.Response:
        """`POST /api/v1/web/messages`: 202 with the ticket number and access code."""
        started = time.perf_counter()
        key = idempotency_key(request)
        held: Held | None = None
        try:
            if refused := announced_too_large(request, self.config.attachments):
                raise refused
            held = self._guard.hold(request)
            msg, uploads = await _read_api(request, WebMessageIn, self.config.attachments)
            customer = customer_ref(msg.name, msg.contact).key
            self._guard.message(customer, held)
            files = await self._keep(request, customer, uploads)
            accepted, replayed = await self._accept(msg, started, key, files)
        except KeyReused:
            raise key_reused("body") from None
        except Throttled as exc:
            raise _json_throttled(exc) from None
        except UploadRefused as exc:
            raise exc.as_json() from None
        finally:
            if held is not None:
                self._guard.release(held)
        return keyed_response(accepted, 202, replayed)

    def _early(self, request: web.Request) -> tuple[Held | None, Early | None]:
        """Judge a form post before its body: its held address token, or why it is refused."""
        if refused := announced_too_large(request, self.config.attachments):
            return None, refused
        try:
            return self._guard.hold(request), None
        except Throttled as exc:
            return None, exc

    async def _keep(
        self, request: web.Request, customer: str, uploads: Sequence[Upload]
    ) -> tuple[AttachmentRef, ...]:
        """Count, check and store a message's files; their references for the envelope."""
        if not uploads:
            return ()
        self._guard.files(request, customer, len(uploads))
        return await keep(self.core.files, uploads, self.config.attachments)

    def _form(self, request: web.Request, http_status: int = 200, **context: Any) -> web.Response:
        context["errors"] = self._worded(request, context.get("errors", []))
        return render(
            request, "form.html", http_status=http_status, files=self.config.attachments, **context
        )

    def _worded(self, request: web.Request, errors: Sequence[FieldError]) -> list[FieldError]:
        """Errors about files in the page's language (`attachments.1` -> "File 2 is ...")."""
        lang, limits = request_lang(request), self.config.attachments
        out = []
        for e in errors:
            head, _, index = e.field.partition(".")
            if e.field == FILE_FIELD and e.message.startswith("too_large"):
                # The body as a whole: all files together over the message limit.
                mb = f"{limits.max_message_bytes / 2**20:g}"
                wording = TEXTS[lang].get("files_total_too_large", e.message)
                out.append(FieldError(field=FILE_FIELD, message=wording.format(mb=mb)))
                continue
            if head != FILE_FIELD or not index.isdigit():
                out.append(e)
                continue
            reason = e.message.split(":", 1)[0]
            wording = TEXTS[lang].get(f"file_{reason}", e.message)
            text = wording.format(
                n=int(index) + 1, mb=f"{limits.max_file_bytes / 2**20:g}", files=limits.max_files
            )
            out.append(FieldError(field=FILE_FIELD, message=text))
        return out

    async def form_page(self, request: web.Request) -> web.Response:
        """`GET /`: the form, usable without JavaScript, with a one-time key for this view."""
        return self._form(request, values={_KEY_FIELD: _new_key()})

    async def form_submit(self, request: web.Request) -> web.StreamResponse:
        """`POST /`: the no-JavaScript form post; redirects to the new ticket's status page."""
        started = time.perf_counter()
        self._same_site(request)
        held, early = self._early(request)
        try:
            return await self._form_post(request, started, held, early)
        finally:
            if held is not None:
                self._guard.release(held)

    async def _form_post(
        self, request: web.Request, started: float, held: Held | None, early: Early | None
    ) -> web.StreamResponse:
        # Refused already: only the text before the files is read, for the page to keep it.
        at_files = None if early is None else _stop
        post = await read_form(request, self.config.attachments, at_files)
        values, uploads = post.values, post.uploads
        # A double click or a resubmit carries this page view's key: one ticket, one page.
        key = values.get(_KEY_FIELD)
        if key is None or not idempotency_key_ok(key):
            # A page from before the key existed: sent as is; a re-shown form gets one.
            key, values[_KEY_FIELD] = None, _new_key()
        again = bool(uploads) or post.cut
        if isinstance(early, Throttled):
            return self._form_throttled(request, early, values, again)
        if early is not None or post.refused is not None:
            refused = early or post.refused
            assert refused is not None
            return self._form(
                request, refused.status, errors=refused.errors, values=values, files_again=True
            )
        try:
            msg = WebMessageIn.model_validate(_fields(WebMessageIn, values))
        except ValidationError as exc:
            errors = field_errors(exc)
            return self._form(request, 422, errors=errors, values=values, files_again=again)
        try:
            assert held is not None
            customer = customer_ref(msg.name, msg.contact).key
            self._guard.message(customer, held)
            files = await self._keep(request, customer, uploads)
            accepted, _ = await self._accept(msg, started, key, files)
        except Throttled as exc:
            return self._form_throttled(request, exc, values, again)
        except UploadRefused as exc:
            return self._form(
                request, exc.status, errors=exc.errors, values=values, files_again=True
            )
        except KeyReused:
            # Edited after it was sent (back button): a fresh key lets this version go too.
            values[_KEY_FIELD] = _new_key()
            return self._form(request, 422, values=values, resent=True, files_again=again)
        raise web.HTTPSeeOther(_status_path(request, accepted.ticket, accepted.access_code))

    def _form_throttled(
        self, request: web.Request, exc: Throttled, values: dict[str, str], again: bool
    ) -> web.Response:
        """The form with everything typed in it, to send again later, and the wait."""
        page = self._form(
            request, exc.status, values=values, files_again=again, **_notice(request, exc)
        )
        page.headers.update(exc.headers)
        return page

    def _same_site(self, request: web.Request) -> None:
        """Refuse (403) a form post made from another site's page."""
        if cross_site(request, self.core.links.public_url):
            raise web.HTTPForbidden(text="Forms can only be sent from this site's own pages.")

    def _proven(self, request: web.Request, code: str) -> str | None:
        """The canonical number of the path's ticket when `code` opens it; else None.

        Raises `Throttled` while this client or this ticket has had too many wrong codes,
        whatever the code, so a guesser learns nothing more once stopped.
        """
        return self._opens(request, self._attempt(request), code)

    def _attempt(self, request: web.Request) -> str:
        """Count a code checked on the path's ticket (429 while locked); the number counted."""
        raw = request.match_info["number"]
        counted = ticketno.normalize(raw) or raw
        self._guard.code_attempt(request, counted)
        return counted

    def _opens(self, request: web.Request, counted: str, code: str) -> str | None:
        """The canonical number when `code` opens `counted`, its attempt given back; else None."""
        number = ticketno.normalize(counted)
        if number is None or not check_code(self.core.links.secret, number, code):
            return None
        self._guard.code_was_right(request, number)
        return number

    async def _status(self, number: str) -> TicketStatus:
        found = await self.core.status(number)
        if found is not None:
            return found
        # A valid code proves we issued this number: the message is still on its way in.
        now = datetime.now(UTC)
        return TicketStatus(
            number=number,
            status="received",
            subject=None,
            created_at=now,
            updated_at=now,
            messages=[],
        )

    async def status_page(self, request: web.Request) -> web.Response:
        """`GET /tickets/{number}?code=`: status, conversation and reply box; 404 says no more."""
        try:
            number = self._proven(request, request.query.get("code", ""))
        except Throttled as exc:
            return _throttled_page(request, exc, "not_found.html")
        if number is None:
            return render(request, "not_found.html", http_status=404)
        return await self._page(request, await self._status(number))

    async def _page(
        self,
        request: web.Request,
        status: TicketStatus,
        http_status: int = 200,
        errors: Sequence[object] = (),
        text: str = "",
        key: str | None = None,
        throttled: Throttled | None = None,
        files_again: bool = False,
    ) -> web.Response:
        extra = {} if throttled is None else _notice(request, throttled)
        return render(
            request,
            "status.html",
            http_status=http_status,
            **extra,
            status=status,
            pretty=ticketno.pretty(status.number),
            code=self.core.links.code(status.number),
            # Only a stored ticket can take a reply; until then the page says "processing".
            can_reply=bool(status.messages),
            sent=request.query.get("sent") == "1",
            errors=errors,
            text=text,
            # One per page view: a double click or a resubmit posts the same reply once.
            key=key or _new_key(),
            files=self.config.attachments,
            files_again=files_again,
        )

    async def attachment(self, request: web.Request) -> web.Response:
        """`GET /tickets/{number}/attachments/{id}?code=`: one of the ticket's files."""
        return await self._file(request, thumb=False)

    async def attachment_thumbnail(self, request: web.Request) -> web.Response:
        """`GET /tickets/{number}/attachments/{id}/thumbnail?code=`: an image's preview."""
        return await self._file(request, thumb=True)

    async def _file(self, request: web.Request, *, thumb: bool) -> web.Response:
        try:
            number = self._proven(request, request.query.get("code", ""))
        except Throttled as exc:
            raise _json_throttled(exc) from None
        try:
            attachment_id = uuid.UUID(request.match_info["id"])
        except ValueError:
            number = None
        found = None if number is None else await self.core.file(number, attachment_id, thumb)
        if found is None:
            raise BadRequest(404, "not_found", "No such file on this ticket.")
        return download(found.name, found.content_type, found.data, inline=found.inline)

    async def api_status(self, request: web.Request) -> web.Response:
        """`GET /api/v1/tickets/{number}/status?code=`: the status page as JSON."""
        try:
            number = self._proven(request, request.query.get("code", ""))
        except Throttled as exc:
            raise _json_throttled(exc) from None
        if number is None:
            raise BadRequest(404, "not_found", "No ticket with this number and code.")
        return json_response(await self._status(number))

    async def _reply(
        self,
        number: str,
        text: str,
        started: float,
        key: str | None,
        files: tuple[AttachmentRef, ...] = (),
    ) -> TicketStatus:
        """Emit the customer's message onto ticket `number`, which they proved they hold.

        Under a key the envelope id is derived from it, so persistence stores a second
        post of the same reply (double click, resubmit, client retry) as the duplicate it is.
        """
        status = await self.core.status(number)
        if status is None:
            raise NotYetStored(number)
        keyed = f"{self.source}:reply:{status.number}:{key}"
        env = reply_envelope(
            status.number,
            text,
            env_id=uuid.uuid5(_KEYED, keyed) if key else uuid7(),
            ticket=self.core.numbers.next(),
            received_at=datetime.now(UTC),
            source=self.source,
            attachments=files,
        )
        await self._emit(env, started)
        return status

    async def reply_submit(self, request: web.Request) -> web.StreamResponse:
        """`POST /tickets/{number}/replies`: the status page's reply box, without JavaScript."""
        started = time.perf_counter()
        self._same_site(request)
        try:
            proof = _Proof(self, request)
        except Throttled as exc:
            return _throttled_page(request, exc, "not_found.html")
        held, early = self._early(request)
        try:
            return await self._reply_post(request, started, proof, held, early)
        finally:
            proof.forget()
            if held is not None:
                self._guard.release(held)

    async def _reply_post(
        self,
        request: web.Request,
        started: float,
        proof: _Proof,
        held: Held | None,
        early: Early | None,
    ) -> web.StreamResponse:
        # Refused already: only the text before the files is read, for the page to keep it.
        at_files = proof.at_files if early is None else _stop
        try:
            post = await read_form(request, self.config.attachments, at_files)
        except _Closed:
            return render(request, "not_found.html", http_status=404)
        code = post.values.get("code", "")
        number = proof.check(code)
        if number is None:
            return render(request, "not_found.html", http_status=404)
        typed = post.values.get("text", "")
        sent_key = post.values.get(_KEY_FIELD, "")
        key = sent_key if idempotency_key_ok(sent_key) else None
        again = bool(post.uploads) or post.cut
        try:
            if early is not None:
                raise early
            if post.refused is not None:
                raise post.refused
            msg = CustomerReplyIn.model_validate({"code": code, "text": typed})
            assert held is not None
            self._guard.reply(number, held)
            files = await self._keep(request, f"ticket:{number}", post.uploads)
            status = await self._reply(number, msg.text, started, key, files)
        except Throttled as exc:
            status = await self._status(number)
            page = await self._page(request, status, exc.status, [], typed, key, exc, again)
            page.headers.update(exc.headers)
            return page
        except UploadRefused as exc:
            status = await self._status(number)
            errors = self._worded(request, exc.errors)
            return await self._page(request, status, exc.status, errors, typed, key, None, True)
        except ValidationError:
            status = await self._status(number)
            return await self._page(request, status, 422, [_INVALID], typed, key, None, again)
        except NotYetStored:
            status = await self._status(number)
            return await self._page(request, status, 409, [_NOT_YET], typed, key, None, again)
        code = self.core.links.code(status.number)
        raise web.HTTPSeeOther(_status_path(request, status.number, code, sent=True))

    async def api_reply(self, request: web.Request) -> web.Response:
        """`POST /api/v1/tickets/{number}/messages`: continue the conversation; 202."""
        started = time.perf_counter()
        try:
            proof = _Proof(self, request)
        except Throttled as exc:
            raise _json_throttled(exc) from None
        held: Held | None = None
        try:
            if refused := announced_too_large(request, self.config.attachments):
                raise refused
            held = self._guard.hold(request)
            limits = self.config.attachments
            try:
                body, uploads = await _read_api(request, CustomerReplyIn, limits, proof.at_files)
            except _Closed:
                raise _not_opened() from None
            key = idempotency_key(request)
            number = proof.check(body.code)
            if number is None:
                raise _not_opened()
            self._guard.reply(number, held)
            files = await self._keep(request, f"ticket:{number}", uploads)
            status = await self._reply(number, body.text, started, key, files)
        except Throttled as exc:
            raise _json_throttled(exc) from None
        except UploadRefused as exc:
            raise exc.as_json() from None
        except NotYetStored:
            raise BadRequest(
                409, "not_yet_stored", "The ticket is still being opened; try again shortly."
            ) from None
        finally:
            proof.forget()
            if held is not None:
                self._guard.release(held)
        links = self.core.links
        accepted = CustomerReplyAccepted(
            ticket=status.number, status_url=links.status_url(status.number)
        )
        return json_response(accepted, 202)


class _Proof:
    """A reply's access code check, counted before its body is read.

    The code comes in the body: checked when the first file begins if it came before the
    files (the status page's box sends it first), else once the body is read. A post
    refused before any code was checked gives its attempt back.
    """

    def __init__(self, connector: WebConnector, request: web.Request) -> None:
        self._web = connector
        self._request = request
        self._counted = connector._attempt(request)
        self._checked = False
        self._number: str | None = None

    def check(self, code: str) -> str | None:
        """The canonical number when `code` opens the path's ticket (checked once); else None."""
        if not self._checked:
            self._checked = True
            self._number = self._web._opens(self._request, self._counted, code)
        return self._number

    def at_files(self, values: dict[str, str]) -> bool:
        """Before the first file: a code already read must open the ticket (else `_Closed`)."""
        if "code" in values and self.check(values["code"]) is None:
            raise _Closed
        return True

    def forget(self) -> None:
        """No code was checked (the body was refused first): the attempt does not count."""
        if not self._checked:
            self._checked = True
            self._web._guard.code_was_right(self._request, self._counted)


def _not_opened() -> BadRequest:
    return BadRequest(404, "not_found", "No ticket with this number and code.")


def _new_key() -> str:
    return secrets.token_urlsafe(16)


def _stop(values: dict[str, str]) -> bool:
    """`AtFiles` of a post refused already: read its text fields, never its files."""
    return False


async def _read_api(
    request: web.Request, model: type[M], limits: UploadLimits, at_files: AtFiles | None = None
) -> tuple[M, list[Upload]]:
    """A JSON body, or the same fields as a multipart form with files; 4xx when invalid."""
    if request.content_type != "multipart/form-data":
        return await read_json(request, model), []
    post = await read_form(request, limits, at_files)
    if post.refused is not None:
        raise post.refused.as_json()
    return validate(model, _fields(model, post.values)), post.uploads


def _fields(model: type[BaseModel], values: dict[str, str]) -> dict[str, str]:
    """The form's values that make a `model`; an empty field counts as absent."""
    return {k: v for k, v in values.items() if k in model.model_fields and v != ""}


def _body_hash(msg: WebMessageIn, files: Sequence[AttachmentRef] = ()) -> str:
    body = msg.model_dump_json() + "".join(f"\n{f.ref}" for f in files)
    return hashlib.sha256(body.encode()).hexdigest()


def _status_path(request: web.Request, number: str, code: str, *, sent: bool = False) -> str:
    """The status page to redirect to, in the language the customer was using."""
    lang = request.query.get("lang")
    suffix = f"&lang={lang}" if lang in ("zh", "en") else ""
    return f"/tickets/{number}?code={code}{suffix}{'&sent=1' if sent else ''}"


def _json_throttled(exc: Throttled) -> BadRequest:
    if exc.reason == "busy":
        message = "We are very busy right now; please send again after Retry-After seconds."
    else:
        message = "Too many requests from this client; try again after Retry-After seconds."
    return BadRequest(exc.status, exc.reason, message, headers=exc.headers)


def _notice(request: web.Request, exc: Throttled) -> dict[str, str]:
    lang = request_lang(request)
    return {"notice": TEXTS[lang][exc.wording].format(wait=wait_text(lang, exc.retry_after))}


def _throttled_page(
    request: web.Request, exc: Throttled, template: str, **context: object
) -> web.Response:
    """The page again with the reason and the wait, and `Retry-After`."""
    resp = render(request, template, http_status=exc.status, **_notice(request, exc), **context)
    resp.headers.update(exc.headers)
    return resp
