"""Hostile tenants (#12): a loopback server that answers as badly as it can, a fleet of
healthy VenueServices beside one hostile VenueService, and what it cost the others.

Shared by `tests/e2e/test_hostile_tenant.py` (which asserts) and `bench/isolation.py` (which
prints the table). Every hostile body carries `MARKER`, and the secrets the hostile inputs
carry are `SECRET`: neither may show in any status, Event or operator log line.

- `server`: the loopback server, `MARKER` and `SECRET`;
- `arena`: the healthy fleet, the operator it runs beside, and the `arena` that sets them up;
- `measure`: the fleet's pace, the operator's memory, and leaks of `MARKER` or `SECRET`;
- `cases`: the catalogue of hostile VenueServices (`CASES`) and `try_case`, which runs one.
"""
