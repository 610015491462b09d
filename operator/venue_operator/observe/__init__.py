"""observe: read-only adapters that turn the outside world into `observations` types."""
