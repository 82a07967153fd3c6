# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0005_wechat_delivery_takeover")]

    initial = False

    operations = [
        ops.AddField(
            model_name="CustomerIdentity",
            name="union_id",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="CustomerIdentity",
            name="subscribed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="CustomerIdentity",
            name="unsubscribed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(model_name="CustomerIdentity", index=Index(fields=["union_id"])),
    ]
