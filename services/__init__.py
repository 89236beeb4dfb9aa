"""claimwatch: event-driven monitoring of out-of-network claims."""

__version__ = "0.1.0"
