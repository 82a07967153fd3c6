# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0006_wechat_followers")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Ticket",
            name="explanation",
            field=fields.JSONField(null=True),
        ),
    ]
