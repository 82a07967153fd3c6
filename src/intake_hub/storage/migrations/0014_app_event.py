# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0013_attachment")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AppEvent",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("webhook_id", fields.CharField(unique=True, max_length=40)),
                ("source", fields.CharField(max_length=80)),
                (
                    "ticket",
                    fields.ForeignKeyField(
                        "intake_hub.Ticket",
                        source_field="ticket_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="app_events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("number", fields.CharField(max_length=11)),
                ("type", fields.CharField(max_length=32)),
                ("payload", fields.JSONField()),
                ("status", fields.CharField(max_length=10)),
                ("attempts", fields.IntField(default=0)),
                ("next_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("last_status", fields.IntField(null=True)),
                ("last_error", fields.CharField(null=True, max_length=200)),
                ("last_latency_ms", fields.IntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "redelivered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "delivered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "app_event",
                "app": "intake_hub",
                "indexes": [
                    Index(fields=["source", "status", "next_at"]),
                    Index(fields=["ticket_id", "created_at"]),
                ],
                "pk_attr": "id",
                "table_description": "An event for an app backend (`ticket.created`, ...), "
                "posted to it until it says 2xx.",
            },
            bases=["Model"],
        ),
    ]
