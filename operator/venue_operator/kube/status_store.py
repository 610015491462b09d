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

from pydantic import BaseModel

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


def status_body(status: VenueServiceStatus) -> dict[str, Any]:
    """The whole status as stored: None, and fields at an empty default ([], "", 0, False),
    are left out, so they are removed; the model reads each back as it was."""
    body = _without_empty_defaults(
        status, status.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    if body.get("health") and body.get("severity") == Severity.NONE:
        del body["severity"]  # read back as None (VenueServiceStatus): blank in kubectl get
    return body


def _without_empty_defaults(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        if key not in data:
            continue
        value = getattr(model, name)
        if (
            not info.is_required()
            and not value
            and value == info.get_default(call_default_factory=True)
        ):
            continue
        out[key] = _nested(value, data[key])
    if isinstance(model, CheckStatus):  # what CheckStatus reads back as it was
        if model.observed == model.level:
            del out["observed"]
        calm = model.level is Level.OK and model.observed is Level.OK
        if calm and model.section == CHECK_SECTIONS.get(model.name):
            del out["section"]
    return out


def _nested(value: Any, data: Any) -> Any:
    if isinstance(value, BaseModel):
        return _without_empty_defaults(value, data)
    if isinstance(value, list):
        return [_nested(v, d) for v, d in zip(value, data, strict=True)]
    return data


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
