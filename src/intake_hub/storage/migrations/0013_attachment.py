# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0012_web_idempotency")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Attachment",
            fields=[
                ("id", fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                (
                    "message",
                    fields.ForeignKeyField(
                        "intake_hub.Message",
                        source_field="message_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="attachments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("position", fields.SmallIntField()),
                ("kind", fields.CharField(max_length=16)),
                ("state", fields.CharField(max_length=8)),
                ("source_ref", fields.CharField(null=True, max_length=500)),
                ("digest", fields.CharField(null=True, max_length=64)),
                ("name", fields.CharField(null=True, max_length=200)),
                ("content_type", fields.CharField(null=True, max_length=100)),
                ("size", fields.BigIntField(null=True)),
                ("thumb_digest", fields.CharField(null=True, max_length=64)),
                ("attempts", fields.SmallIntField(default=0)),
                ("next_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("error", fields.CharField(null=True, max_length=200)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "attachment",
                "app": "intake_hub",
                "indexes": [
                    Index(fields=["message_id", "position"]),
                    Index(fields=["state", "next_at"]),
                    Index(fields=["digest"]),
                ],
                "pk_attr": "id",
                "table_description": "A file sent with an inbound message: kept in the "
                "attachment store by its digest.",
            },
            bases=["Model"],
        ),
    ]
