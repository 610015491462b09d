"""The per-service loop: every interval, observe -> assess -> decide -> act -> record."""
