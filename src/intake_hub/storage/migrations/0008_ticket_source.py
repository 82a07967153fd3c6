# ruff: noqa: RUF012
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("intake_hub", "0007_ticket_explanation")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Ticket",
            name="source",
            field=fields.CharField(null=True, max_length=80),
        ),
        ops.AddField(
            model_name="Ticket",
            name="customer_key",
            field=fields.CharField(null=True, max_length=200),
        ),
    ]
