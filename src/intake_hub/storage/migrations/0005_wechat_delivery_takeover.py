# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0004_routing_and_autoreply")]

    initial = False

    operations = [
        ops.AddField(
            model_name="WeChatDelivery",
            name="attempt",
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name="WeChatDelivery",
            name="claimed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
