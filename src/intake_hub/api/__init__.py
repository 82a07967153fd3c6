"""The agent and admin HTTP API."""
