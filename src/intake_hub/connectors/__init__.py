"""Channel connectors: each verifies, normalises and emits, and never sees the bus."""
