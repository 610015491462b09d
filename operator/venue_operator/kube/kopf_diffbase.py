"""Kopf's diff base, never built: the operator registers no changing handlers.

For every event of every VenueService, Kopf builds the object's "essence" (a deep copy of
the whole body, status included, less what it then drops) to diff it against the last
handled one (`_core/reactor/processing.py`, `_detect_causes`). Only on-create/update/resume
handlers use that diff, and the operator has none: its daemon reads the live body, its
deletion handler is an event handler. With shards every replica sees every replica's status
writes, so the copies were paid for the whole fleet's writes: 145 us an event for a degraded
VenueService (6.6 KB), 1,000-1,500 such events a 15 s cycle at 5,000 while the fleet
converged. `register` refuses a changing handler (`check_registry`), so a future one does not
silently get an empty diff.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """Builds, keeps and finds nothing: every event's essence is empty."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def check_registry(registry: kopf.OperatorRegistry) -> None:
    """Raise if a changing handler (on.create/update/delete/resume/field) is registered:
    it would need the diff base this storage never builds."""
    changing = registry._changing.get_all_handlers()  # no public way to list them
    if changing:
        names = ", ".join(sorted(str(h.id) for h in changing))
        raise RuntimeError(
            f"changing handlers need Kopf's diff base (kube/kopf_diffbase.py): {names}"
        )
