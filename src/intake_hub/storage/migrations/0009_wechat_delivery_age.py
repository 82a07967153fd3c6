# ruff: noqa: RUF012
from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0008_ticket_source")]

    initial = False

    operations = [
        ops.AddIndex(model_name="WeChatDelivery", index=Index(fields=["instance", "created_at"])),
    ]
