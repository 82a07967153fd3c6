# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0003_wechat_outbound")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AutoReplyCount",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("channel", fields.CharField(max_length=16)),
                ("customer_key", fields.CharField(max_length=200)),
                ("window_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("n", fields.IntField(default=0)),
            ],
            options={
                "table": "auto_reply_count",
                "app": "intake_hub",
                "unique_together": (("channel", "customer_key", "window_start"),),
                "pk_attr": "id",
                "table_description": (
                    "Automatic replies sent to one customer on one channel in one 10-minute window."
                ),
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Agent",
            name="last_claim_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Agent",
            name="open_count",
            field=fields.IntField(default=0),
        ),
    ]
