"""The fleet: what the operator judges across every VenueService at once (storms, the
action rate)."""
