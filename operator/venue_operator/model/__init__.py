"""The vocabulary, pure: the VenueService's spec and status, observations, keys, Event reasons."""
