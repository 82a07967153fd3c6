"""The web channel: the customer form page, its JSON API and the ticket status pages."""
