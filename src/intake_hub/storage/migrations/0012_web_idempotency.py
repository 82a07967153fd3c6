# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0011_wechat_nonce")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WebIdempotency",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("instance", fields.CharField(max_length=64)),
                ("idem_key", fields.CharField(max_length=100)),
                ("body_hash", fields.CharField(max_length=64)),
                ("ticket", fields.CharField(max_length=11)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "web_idempotency",
                "app": "intake_hub",
                "unique_together": (("instance", "idem_key"),),
                "pk_attr": "id",
                "table_description": "The first answer to a web message sent with an "
                "`Idempotency-Key`: its ticket number.",
            },
            bases=["Model"],
        ),
        ops.AddIndex(model_name="WebIdempotency", index=Index(fields=["instance", "created_at"])),
    ]
