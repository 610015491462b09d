"""Entry points: the `venue-operator` commands and the Kopf registrations `run` starts."""
