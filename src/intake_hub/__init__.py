"""intake-hub: every customer-service channel in, one routed ticket out."""

__version__ = "0.1.0"
