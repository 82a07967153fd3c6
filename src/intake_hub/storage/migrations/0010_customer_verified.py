# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0009_wechat_delivery_age")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Customer",
            name="verified",
            field=fields.BooleanField(default=True),
        ),
        # Web contacts were always only claimed: the customers made from them say so.
        ops.RunSQL(
            "UPDATE customer SET verified = FALSE WHERE id IN "
            "(SELECT customer_id FROM customer_identity WHERE channel = 'web')",
            reverse_sql="",
        ),
    ]
