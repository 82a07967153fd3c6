# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0010_customer_verified")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WeChatNonce",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("instance", fields.CharField(max_length=64)),
                ("nonce", fields.CharField(max_length=64)),
                ("timestamp", fields.BigIntField()),
                ("body_hash", fields.CharField(max_length=64)),
                ("seen_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "wechat_nonce",
                "app": "intake_hub",
                "unique_together": (("instance", "nonce", "timestamp"),),
                "pk_attr": "id",
                "table_description": "A plaintext-mode push's (nonce, timestamp), kept while "
                "that timestamp is acceptable.",
            },
            bases=["Model"],
        ),
        ops.AddIndex(model_name="WeChatNonce", index=Index(fields=["instance", "timestamp"])),
    ]
