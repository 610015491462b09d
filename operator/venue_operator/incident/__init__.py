"""The incident: its bookkeeping, its impact on users and its post-mortem draft."""
