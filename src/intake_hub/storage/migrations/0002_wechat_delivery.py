# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WeChatDelivery",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("instance", fields.CharField(max_length=64)),
                ("msg_key", fields.CharField(max_length=160)),
                ("envelope_id", fields.UUIDField()),
                ("ticket", fields.CharField(max_length=11)),
                ("answer", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "answered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "wechat_delivery",
                "app": "intake_hub",
                "unique_together": (("instance", "msg_key"),),
                "pk_attr": "id",
                "table_description": "A WeChat push's first answer, replayed to its retries.",
            },
            bases=["Model"],
        ),
    ]
