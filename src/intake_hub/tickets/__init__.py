"""The ticket service: what agents and customers may do with tickets, whatever the channel."""
