"""The one writer of a VenueService's status.

Every status write goes through `StatusStore.save`, which replaces the whole status
(a JSON patch `add /status`): a field that is now empty is gone from the stored object,
so an open incident can never keep the `resolvedAt` of the one before it. Empty fields
are left out (what `kubectl describe` shows is what is there), and so is the severity of
a healthy service (a blank printer column). The store also remembers what it last wrote,
which the loop trusts over a watch that may lag.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from venue_operator.model.reasons import CHECK_SECTIONS
from venue_operator.model.status import (
    CheckStatus,
    Level,
    Severity,
    VenueServiceStatus,
)
from venue_operator.record import telemetry
from venue_operator.record.transitions import write_causes

StatusWrite = Callable[[dict[str, Any]], Awaitable[None]]  # the status body -> stored


def parse_status(raw: Mapping[str, Any] | None) -> VenueServiceStatus:
    """The stored status, tolerating fields written by others (e.g. Kopf's own)."""
    known = set(VenueServiceStatus.model_fields) | {
        f.alias for f in VenueServiceStatus.model_fields.values() if f.alias
    }
    return VenueServiceStatus.model_validate({k: v for k, v in (raw or {}).items() if k in known})


def read_back(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored status whole, as a dict (what status_body left out filled back in): for
    readers of raw status (the lab, benchmarks) that want every field."""
    return parse_status(raw).model_dump(mode="json", by_alias=True)


def status_body(status: VenueServiceStatus) -> dict[str, Any]:
    """The whole status as stored: None and fields at their default are left out, so a field
    that empties is removed; the model reads each back as it was (model/status.py), as it
    does a check's `observed` equal to its level, a calm check stored by name in `okChecks`,
    and a healthy service's severity (blank in kubectl get)."""
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    stored_checks = []
    for check, stored in zip(status.checks, body.pop("checks", []), strict=True):
        if _calm(check):
            body.setdefault("okChecks", []).append(check.name)
            continue
        if check.observed == check.level:
            stored.pop("observed", None)
        stored_checks.append(stored)
    if stored_checks:
        body["checks"] = stored_checks
    if body.get("health") and body.get("severity") == Severity.NONE:
        del body["severity"]
    return body


def _calm(check: CheckStatus) -> bool:
    """Ok, observed ok, nothing pending or to say, in its runbook section: stored by name
    only, as the model reads it back (its value is a past cycle's, never acted on)."""
    bare = CheckStatus(name=check.name, level=Level.OK, section=CHECK_SECTIONS.get(check.name, ""))
    return check.model_copy(update={"value": None, "unit": None, "warning": None,
                                    "critical": None}) == bare  # fmt: skip


class StatusStore:
    """`written`: the status last stored; `known`: the loop's latest view of it."""

    def __init__(self, write: StatusWrite, stored: VenueServiceStatus) -> None:
        self._write = write
        self.known = self.written = stored

    async def save(self, status: VenueServiceStatus, cause: str) -> None:
        """Store `status` (raises if the API refuses; `written` then stays as it was)."""
        await self._write(status_body(status))
        telemetry.STATUS_WRITES.labels(cause).inc()
        self.known = self.written = status

    async def save_changes(self, status: VenueServiceStatus) -> bool:
        """`status` becomes `known`, and is stored when something worth a write changed since
        the last write (record.write_causes; its first cause labels the write). True: stored."""
        self.known = status
        causes = write_causes(self.written, status)
        if causes:
            await self.save(status, causes[0])
        return bool(causes)
