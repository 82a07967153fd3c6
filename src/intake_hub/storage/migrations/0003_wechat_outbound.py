# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0002_wechat_delivery")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WeChatOutbound",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=160)),
                ("instance", fields.CharField(max_length=64)),
                ("openid", fields.CharField(max_length=64)),
                ("ticket", fields.CharField(max_length=11)),
                ("envelope_id", fields.UUIDField(null=True)),
                ("ticket_id", fields.UUIDField(null=True)),
                ("text", fields.TextField(null=True, unique=False)),
                ("status", fields.CharField(max_length=8)),
                ("window_from", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("attempts", fields.IntField(default=0)),
                ("error_code", fields.IntField(null=True)),
                ("reason", fields.CharField(null=True, max_length=200)),
                ("next_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "wechat_outbound",
                "app": "intake_hub",
                "indexes": [Index(fields=["status", "next_at"])],
                "pk_attr": "id",
                "table_description": (
                    "One customer-service message to a WeChat customer,"
                    " sent at most once (unique key)."
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WeChatToken",
            fields=[
                (
                    "app_id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("token", fields.TextField(null=True, unique=False)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("fetched_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("lease_owner", fields.CharField(null=True, max_length=64)),
                (
                    "lease_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "wechat_token",
                "app": "intake_hub",
                "pk_attr": "app_id",
                "table_description": (
                    "The access_token of one account, shared by every process,"
                    " fetched by the lease holder."
                ),
            },
            bases=["Model"],
        ),
    ]
