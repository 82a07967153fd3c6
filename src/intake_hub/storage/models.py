"""Tortoise models of the ticket store (app label `intake_hub`)."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

APP = "intake_hub"


class Customer(Model):
    """A person who wrote to us on one or more channels."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200, null=True)
    phone = fields.CharField(max_length=64, null=True)
    email = fields.CharField(max_length=254, null=True)
    vip = fields.BooleanField(default=False)
    # False when the contact is only what the sender typed (web form, email From): agents
    # call back on it, but it is nobody's identity (docs/architecture.md, trust model).
    verified = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        app = APP
        table = "customer"


class CustomerIdentity(Model):
    """How one channel knows a customer."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    key = fields.CharField(max_length=200)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "intake_hub.Customer", related_name="identities", on_delete=fields.CASCADE
    )
    # WeChat: the person across one merchant's official accounts (each has its own openid).
    union_id = fields.CharField(max_length=64, null=True)
    # WeChat follow state, as of the event times: nothing is sent while unsubscribed.
    subscribed_at = fields.DatetimeField(null=True)
    unsubscribed_at = fields.DatetimeField(null=True)

    class Meta:
        app = APP
        table = "customer_identity"
        unique_together = (("channel", "key"),)
        indexes = (("union_id",),)


class Team(Model):
    """A department tickets are routed to."""

    id = fields.CharField(max_length=64, primary_key=True)
    name = fields.CharField(max_length=200)

    class Meta:
        app = APP
        table = "team"


class Agent(Model):
    """A person who works tickets, signing in with a bearer token."""

    id = fields.CharField(max_length=64, primary_key=True)
    name = fields.CharField(max_length=200)
    role = fields.CharField(max_length=16)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "intake_hub.Team", related_name="agents", null=True, on_delete=fields.SET_NULL
    )
    skills: fields.Field[list[str]] = fields.JSONField(default=list)
    online = fields.BooleanField(default=True)
    capacity = fields.IntField(default=50)
    # Tickets routed to this agent and not yet closed: the router claims a slot with one
    # conditional UPDATE (`open_count < cap`), so racing workers cannot pass the cap.
    open_count = fields.IntField(default=0)
    # When the last slot was claimed: a recount leaves recently claimed agents alone.
    last_claim_at = fields.DatetimeField(null=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        app = APP
        table = "agent"


class Ticket(Model):
    """One customer issue (工单) and its state."""

    id = fields.UUIDField(primary_key=True)
    number = fields.CharField(max_length=11, unique=True)
    status = fields.CharField(max_length=16)
    channel = fields.CharField(max_length=16)
    category = fields.CharField(max_length=32, null=True)
    priority = fields.CharField(max_length=8, default="normal")
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    team = fields.CharField(max_length=64, null=True)
    assignee: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "intake_hub.Agent", related_name="tickets", null=True, on_delete=fields.SET_NULL
    )
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "intake_hub.Customer", related_name="tickets", on_delete=fields.RESTRICT
    )
    subject = fields.CharField(max_length=200, null=True)
    order_id = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)
    # The connector instance (`wechat/wechat`) and the customer's key on it that opened the
    # ticket: where an agent's reply and status notices are pushed.
    source = fields.CharField(max_length=80, null=True)
    customer_key = fields.CharField(max_length=200, null=True)
    # What classify, respond and route decided for the first message, and why
    # (`rules/decision.py`); follow-ups do not change category, team or this record.
    explanation: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)

    class Meta:
        app = APP
        table = "ticket"
        indexes = (
            ("created_at", "id"),
            ("status", "created_at"),
            ("category", "created_at"),
            ("channel", "created_at"),
            ("assignee_id", "status"),
            ("customer_id", "channel", "status", "updated_at"),
        )


class TicketAlias(Model):
    """The number of a follow-up that joined an older ticket."""

    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=11, unique=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake_hub.Ticket", related_name="aliases", on_delete=fields.CASCADE
    )

    class Meta:
        app = APP
        table = "ticket_alias"


class Message(Model):
    """One message of a ticket's conversation, inbound or outbound."""

    id = fields.UUIDField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake_hub.Ticket", related_name="messages", on_delete=fields.CASCADE
    )
    direction = fields.CharField(max_length=3)
    channel = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=255, null=True)
    kind = fields.CharField(max_length=16, null=True)
    text = fields.TextField()
    created_at = fields.DatetimeField()
    dedupe_key = fields.CharField(max_length=64, unique=True)

    class Meta:
        app = APP
        table = "message"
        unique_together = (("channel", "external_id"),)
        indexes = (("ticket_id", "created_at"),)


class Attachment(Model):
    """A file sent with an inbound message: kept in the attachment store by its digest.

    A provider's file not fetched yet (a WeChat media id) waits as `pending` with its
    reference; a link or a location is kept as a reference only.
    """

    id = fields.UUIDField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "intake_hub.Message", related_name="attachments", on_delete=fields.CASCADE
    )
    position = fields.SmallIntField()
    # file | image | voice | video | location | link
    kind = fields.CharField(max_length=16)
    # stored | pending (to fetch) | failed (gave up fetching) | link (a reference, no file)
    state = fields.CharField(max_length=8)
    source_ref = fields.CharField(max_length=500, null=True)
    digest = fields.CharField(max_length=64, null=True)
    name = fields.CharField(max_length=200, null=True)
    content_type = fields.CharField(max_length=100, null=True)
    size = fields.BigIntField(null=True)
    thumb_digest = fields.CharField(max_length=64, null=True)
    attempts = fields.SmallIntField(default=0)
    next_at = fields.DatetimeField(null=True)
    error = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        app = APP
        table = "attachment"
        indexes = (("message_id", "position"), ("state", "next_at"), ("digest",))


class Event(Model):
    """One audit record per change of a ticket."""

    id = fields.UUIDField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake_hub.Ticket", related_name="events", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    actor = fields.CharField(max_length=64)
    data: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    dedupe_key = fields.CharField(max_length=80, unique=True, null=True)

    class Meta:
        app = APP
        table = "event"
        indexes = (("ticket_id", "created_at"),)


class WeChatDelivery(Model):
    """A WeChat push's first answer, replayed to its retries."""

    id = fields.IntField(primary_key=True)
    instance = fields.CharField(max_length=64)
    msg_key = fields.CharField(max_length=160)
    envelope_id = fields.UUIDField()
    ticket = fields.CharField(max_length=11)
    # NULL while the first delivery still waits for its reply; "" means it answered `success`.
    answer = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    answered_at = fields.DatetimeField(null=True)
    # Bumped by each retry that takes over a claim its holder left pending: the claim token.
    attempt = fields.IntField(default=0)
    # When the current holder claimed; NULL means `created_at` (the first delivery).
    claimed_at = fields.DatetimeField(null=True)

    class Meta:
        app = APP
        table = "wechat_delivery"
        unique_together = (("instance", "msg_key"),)
        indexes = (("instance", "created_at"),)


class WeChatNonce(Model):
    """A plaintext-mode push's (nonce, timestamp), kept while that timestamp is acceptable.

    The signature covers only token, timestamp and nonce: the body's hash lets a retry of
    the same push through and refuses the same signed query carrying another body.
    """

    id = fields.IntField(primary_key=True)
    instance = fields.CharField(max_length=64)
    nonce = fields.CharField(max_length=64)
    timestamp = fields.BigIntField()
    body_hash = fields.CharField(max_length=64)
    seen_at = fields.DatetimeField()

    class Meta:
        app = APP
        table = "wechat_nonce"
        unique_together = (("instance", "nonce", "timestamp"),)
        indexes = (("instance", "timestamp"),)


class WebIdempotency(Model):
    """The first answer to a web message sent with an `Idempotency-Key`: its ticket number.

    The body's hash makes the stored answer go only to a request with the identical body;
    the same key with another body is refused.
    """

    id = fields.IntField(primary_key=True)
    instance = fields.CharField(max_length=64)
    idem_key = fields.CharField(max_length=100)
    body_hash = fields.CharField(max_length=64)
    ticket = fields.CharField(max_length=11)
    created_at = fields.DatetimeField()

    class Meta:
        app = APP
        table = "web_idempotency"
        unique_together = (("instance", "idem_key"),)
        indexes = (("instance", "created_at"),)


class WeChatToken(Model):
    """The access_token of one account, shared by every process, fetched by the lease holder."""

    app_id = fields.CharField(max_length=64, primary_key=True)
    token = fields.TextField(null=True)
    expires_at = fields.DatetimeField(null=True)
    fetched_at = fields.DatetimeField(null=True)
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)

    class Meta:
        app = APP
        table = "wechat_token"


class OutboxRow(Model):
    """What every channel's outbox row has: a message sent at most once (unique key).

    waiting (for the stored auto-reply) -> pending -> sending -> sent | failed | skipped
    """

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=160, unique=True)
    instance = fields.CharField(max_length=64)
    ticket = fields.CharField(max_length=11)
    # Set for an auto-reply that is sent once stored: its stored reply is the text.
    envelope_id = fields.UUIDField(null=True)
    ticket_id = fields.UUIDField(null=True)
    text = fields.TextField(null=True)
    status = fields.CharField(max_length=8)
    attempts = fields.IntField(default=0)
    reason = fields.CharField(max_length=200, null=True)
    next_at = fields.DatetimeField()
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        abstract = True


class WeChatOutbound(OutboxRow):
    """One customer-service message to a WeChat customer."""

    openid = fields.CharField(max_length=64)
    window_from = fields.DatetimeField()
    error_code = fields.IntField(null=True)

    class Meta:
        app = APP
        table = "wechat_outbound"
        indexes = (("status", "next_at"),)


class AutoReplyCount(Model):
    """Automatic replies sent to one customer on one channel in one 10-minute window."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    customer_key = fields.CharField(max_length=200)
    window_start = fields.DatetimeField()
    n = fields.IntField(default=0)

    class Meta:
        app = APP
        table = "auto_reply_count"
        unique_together = (("channel", "customer_key", "window_start"),)


class AppEvent(Model):
    """An event for an app backend (`ticket.created`, ...), posted to it until it says 2xx.

    Written in the transaction of the change it reports; `webhook_id` derives from that
    change's own ids, so a redelivered message or a retried request makes no second row.
    """

    id = fields.IntField(primary_key=True)
    webhook_id = fields.CharField(max_length=40, unique=True)
    source = fields.CharField(max_length=80)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake_hub.Ticket", related_name="app_events", on_delete=fields.CASCADE
    )
    number = fields.CharField(max_length=11)
    type = fields.CharField(max_length=32)
    payload: fields.Field[dict[str, Any]] = fields.JSONField()
    # pending (a lease is a `next_at` in the future) -> delivered | dead
    status = fields.CharField(max_length=10)
    attempts = fields.IntField(default=0)
    next_at = fields.DatetimeField()
    last_status = fields.IntField(null=True)
    last_error = fields.CharField(max_length=200, null=True)
    last_latency_ms = fields.IntField(null=True)
    created_at = fields.DatetimeField()
    # Set by a manual redelivery: the retry horizon counts from here instead.
    redelivered_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        app = APP
        table = "app_event"
        indexes = (("source", "status", "next_at"), ("ticket_id", "created_at"))


class MailOutbound(OutboxRow):
    """One mail to a customer: auto-reply, agent reply or notice.

    `message_id` is made when the row is written, so a resend after an interrupted send
    carries the same Message-ID (receivers fold such copies) and replies to it thread.
    """

    to_address = fields.CharField(max_length=320)
    message_id = fields.CharField(max_length=255, unique=True)
    automatic = fields.BooleanField(default=False)

    class Meta:
        app = APP
        table = "mail_outbound"
        indexes = (("instance", "status", "next_at"), ("ticket_id", "created_at"))


class MailAddress(Model):
    """An address the hub's mail bounced from: automatic mail to it is held back."""

    address = fields.CharField(max_length=320, primary_key=True)
    failing_since = fields.DatetimeField(null=True)
    reason = fields.CharField(max_length=200, null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        app = APP
        table = "mail_address"


class ImapMailbox(Model):
    """How far one IMAP mailbox was read: the last UID taken, valid under its UIDVALIDITY."""

    id = fields.IntField(primary_key=True)
    instance = fields.CharField(max_length=64)
    mailbox = fields.CharField(max_length=200)
    uidvalidity = fields.BigIntField()
    last_uid = fields.BigIntField()
    updated_at = fields.DatetimeField()

    class Meta:
        app = APP
        table = "imap_mailbox"
        unique_together = (("instance", "mailbox"),)
