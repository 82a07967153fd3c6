"""Email: an SMTP listener that turns delivered mail into tickets (docs/connectors/email.md)."""
