# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0014_app_event")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MailOutbound",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=160)),
                ("instance", fields.CharField(max_length=64)),
                ("to_address", fields.CharField(max_length=320)),
                ("ticket", fields.CharField(max_length=11)),
                ("ticket_id", fields.UUIDField(null=True)),
                ("envelope_id", fields.UUIDField(null=True)),
                ("message_id", fields.CharField(unique=True, max_length=255)),
                ("text", fields.TextField(null=True)),
                ("status", fields.CharField(max_length=8)),
                ("automatic", fields.BooleanField(default=False)),
                ("attempts", fields.IntField(default=0)),
                ("reason", fields.CharField(null=True, max_length=200)),
                ("next_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "mail_outbound",
                "app": "intake_hub",
                "indexes": [
                    Index(fields=["instance", "status", "next_at"]),
                    Index(fields=["ticket_id", "created_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One mail to a customer: auto-reply, agent reply or "
                "notice, sent at most once per key.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MailAddress",
            fields=[
                ("address", fields.CharField(primary_key=True, max_length=320)),
                (
                    "failing_since",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("reason", fields.CharField(null=True, max_length=200)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "mail_address",
                "app": "intake_hub",
                "pk_attr": "address",
                "table_description": "An address the hub's mail bounced from: automatic mail "
                "to it is held back.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ImapMailbox",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("instance", fields.CharField(max_length=64)),
                ("mailbox", fields.CharField(max_length=200)),
                ("uidvalidity", fields.BigIntField()),
                ("last_uid", fields.BigIntField()),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "imap_mailbox",
                "app": "intake_hub",
                "unique_together": (("instance", "mailbox"),),
                "pk_attr": "id",
                "table_description": "How far one IMAP mailbox was read: the last UID taken, "
                "valid under its UIDVALIDITY.",
            },
            bases=["Model"],
        ),
    ]
