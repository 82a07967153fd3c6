"""Persistence: tortoise models, migrations, the batched writer, queries, agents, roster."""
