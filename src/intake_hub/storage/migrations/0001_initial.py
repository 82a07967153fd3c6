# ruff: noqa: RUF012
from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Customer",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("name", fields.CharField(null=True, max_length=200)),
                ("phone", fields.CharField(null=True, max_length=64)),
                ("email", fields.CharField(null=True, max_length=254)),
                ("vip", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "customer",
                "app": "intake_hub",
                "pk_attr": "id",
                "table_description": "A person who wrote to us on one or more channels.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CustomerIdentity",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("channel", fields.CharField(max_length=16)),
                ("key", fields.CharField(max_length=200)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "intake_hub.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
            ],
            options={
                "table": "customer_identity",
                "app": "intake_hub",
                "unique_together": (("channel", "key"),),
                "pk_attr": "id",
                "table_description": "How one channel knows a customer.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Team",
            fields=[
                (
                    "id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("name", fields.CharField(max_length=200)),
            ],
            options={
                "table": "team",
                "app": "intake_hub",
                "pk_attr": "id",
                "table_description": "A department tickets are routed to.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Agent",
            fields=[
                (
                    "id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("name", fields.CharField(max_length=200)),
                ("role", fields.CharField(max_length=16)),
                (
                    "team",
                    fields.ForeignKeyField(
                        "intake_hub.Team",
                        source_field="team_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="agents",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("skills", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("online", fields.BooleanField(default=True)),
                ("capacity", fields.IntField(default=50)),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "agent",
                "app": "intake_hub",
                "pk_attr": "id",
                "table_description": "A person who works tickets, signing in with a bearer token.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Ticket",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("number", fields.CharField(unique=True, max_length=11)),
                ("status", fields.CharField(max_length=16)),
                ("channel", fields.CharField(max_length=16)),
                ("category", fields.CharField(null=True, max_length=32)),
                ("priority", fields.CharField(default="normal", max_length=8)),
                ("tags", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("team", fields.CharField(null=True, max_length=64)),
                (
                    "assignee",
                    fields.ForeignKeyField(
                        "intake_hub.Agent",
                        source_field="assignee_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="tickets",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "intake_hub.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tickets",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("subject", fields.CharField(null=True, max_length=200)),
                ("order_id", fields.CharField(null=True, max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "ticket",
                "app": "intake_hub",
                "indexes": [
                    Index(fields=["created_at", "id"]),
                    Index(fields=["status", "created_at"]),
                    Index(fields=["category", "created_at"]),
                    Index(fields=["channel", "created_at"]),
                    Index(fields=["assignee_id", "status"]),
                    Index(fields=["customer_id", "channel", "status", "updated_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One customer issue (工单) and its state.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Event",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "ticket",
                    fields.ForeignKeyField(
                        "intake_hub.Ticket",
                        source_field="ticket_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("kind", fields.CharField(max_length=32)),
                ("actor", fields.CharField(max_length=64)),
                ("data", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("dedupe_key", fields.CharField(null=True, unique=True, max_length=80)),
            ],
            options={
                "table": "event",
                "app": "intake_hub",
                "indexes": [Index(fields=["ticket_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "One audit record per change of a ticket.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Message",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "ticket",
                    fields.ForeignKeyField(
                        "intake_hub.Ticket",
                        source_field="ticket_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("direction", fields.CharField(max_length=3)),
                ("channel", fields.CharField(max_length=16)),
                ("external_id", fields.CharField(null=True, max_length=255)),
                ("kind", fields.CharField(null=True, max_length=16)),
                ("text", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("dedupe_key", fields.CharField(unique=True, max_length=64)),
            ],
            options={
                "table": "message",
                "app": "intake_hub",
                "unique_together": (("channel", "external_id"),),
                "indexes": [Index(fields=["ticket_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "One message of a ticket's conversation, inbound or outbound.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TicketAlias",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("number", fields.CharField(unique=True, max_length=11)),
                (
                    "ticket",
                    fields.ForeignKeyField(
                        "intake_hub.Ticket",
                        source_field="ticket_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="aliases",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
            ],
            options={
                "table": "ticket_alias",
                "app": "intake_hub",
                "pk_attr": "id",
                "table_description": "The number of a follow-up that joined an older ticket.",
            },
            bases=["Model"],
        ),
    ]
