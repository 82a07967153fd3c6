"""The app webhook channel: Standard Webhooks signed events from merchants' app backends."""
