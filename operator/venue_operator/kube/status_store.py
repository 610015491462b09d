"""The one writer of a VenueService's status.

Every status write goes through `StatusStore.save`, which replaces the whole status
(a JSON patch `add /status`): a field that is now empty is gone from the stored object,
so an open incident can never keep the `resolvedAt` of the one before it. Empty fields
are left out (what `kubectl describe` shows is what is there), and so is the severity of
a healthy service (a blank printer column). The store also remembers what it last wrote,
which the loop trusts over a watch that may lag.

Every write is fenced: it carries the resourceVersion the store last read or wrote, and the
API server refuses it if the object moved since. Moved by a write to its metadata or spec
(Kopf's annotations, a user's edit), the stored status is still the store's own: it writes
again at the new version. Moved because someone else wrote the status (a second operator
during a peering overlap, a replica that took the service over, a human): `StatusTaken`,
and the store adopts what is stored, so no history, budget or write-ahead record is lost
to a last-writer-wins overwrite, and the action a write-ahead record was for is not taken.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from venue_operator.kube import errors
from venue_operator.model.reasons import CHECK_SECTIONS
from venue_operator.model.status import (
    CheckStatus,
    Level,
    Severity,
    VenueServiceStatus,
)
from venue_operator.record import telemetry
from venue_operator.record.write_causes import causes_between, marked, significant, steady_mark

# (the status body, the resourceVersion it must still be at) -> the new resourceVersion
StatusWrite = Callable[[dict[str, Any], str | None], Awaitable[str | None]]
# -> (the stored status, the resourceVersion it was read at)
StatusRead = Callable[[], Awaitable[tuple[dict[str, Any], str]]]
FENCED_TRIES = 3  # metadata moves (Kopf's annotations) a few times a cycle at most


class StatusTaken(Exception):
    """A status write not made, and never to be retried as it was: someone else wrote the
    status since the store last read or wrote it (the store now holds what is stored), or,
    with shards, this replica no longer owns the service (loop/ownership.py)."""


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
    return (
        check.level is Level.OK and check.observed is Level.OK and check.pending is None
        and not check.pending_count and not check.breach and check.reason is None
        and check.last_known is None and check.section == CHECK_SECTIONS.get(check.name, "")
    )  # fmt: skip


class StatusStore:
    """`written`: the status last stored; `known`: the loop's latest view of it.

    Once `known` has moved on, `written` is kept as the JSON body it was stored as and read
    back when asked for: a second model of every status was 20 MB at 1,000 healthy services,
    the body a tenth of it. What the body leaves out (a calm check's last value) is what
    `write_causes` ignores, and the page outbox is kept whole. Its `steady_mark` is kept
    too: a steady cycle compares marks instead of reading the body back (two parses a
    cycle were a quarter of a healthy cycle's CPU)."""

    def __init__(
        self, write: StatusWrite, stored: VenueServiceStatus,
        read: StatusRead | None = None, resource_version: str | None = None,
    ) -> None:  # fmt: skip
        """`read` and `resource_version` (what `stored` was read at) fence the writes; a
        store without `read` writes unfenced (unit tests' writers)."""
        self._write, self._read = write, read
        self.resource_version = resource_version if read is not None else None
        self._written: VenueServiceStatus | None  # None: kept as `_written_body`
        self._stored(stored)

    @property
    def written(self) -> VenueServiceStatus:
        if self._written is not None:
            return self._written
        return parse_status(json.loads(self._written_body))

    @property
    def known(self) -> VenueServiceStatus:
        return self._known

    @known.setter
    def known(self, status: VenueServiceStatus) -> None:
        self._known, self._steady = status, False  # settled until save_changes says

    @property
    def settled(self) -> VenueServiceStatus:
        """`written` as far as anything worth a write goes (the page outbox, levels, actions):
        `known` when the last `save_changes` found nothing to write, so no body is read."""
        return self.known if self._steady else self.written

    def _stored(self, status: VenueServiceStatus, mark: str | None = None) -> None:
        self._known = self._written = status
        self._written_body = ""
        self._mark = steady_mark(status) if mark is None else mark
        self._steady = True

    def _keep_as_body(self) -> None:
        if self._written is not None and self._written is not self.known:
            self._written_body = json.dumps(status_body(self._written), separators=(",", ":"))
            self._written = None

    def reload(self, raw: Mapping[str, Any], resource_version: str | None) -> None:
        """Start again from what is stored (a shard that owns the service again)."""
        self._stored(parse_status(raw))
        self.resource_version = resource_version if self._read is not None else None

    async def save(self, status: VenueServiceStatus, cause: str, mark: str | None = None) -> None:
        """Store `status` (raises if the API refuses, StatusTaken if someone else wrote the
        status; `written` then stays as it was, or becomes what they wrote); `mark`: its
        steady mark, if known."""
        body = status_body(status)
        for _ in range(FENCED_TRIES):
            try:
                self.resource_version = await self._write(body, self.resource_version)
                break
            except errors.ApiError as exc:
                if self._read is None or not errors.is_conflict(exc):
                    raise
                await self._reread()
        else:
            raise StatusTaken(f"the object kept moving: {FENCED_TRIES} fenced writes refused")
        telemetry.STATUS_WRITES.labels(cause).inc()
        self._stored(status, mark)

    async def _reread(self) -> None:
        """After a refused write: the new version, if the status stored is still ours."""
        assert self._read is not None
        raw, version = await self._read()
        self.resource_version = version
        stored = parse_status(raw)
        if stored != parse_status(status_body(self.written)):
            self._stored(stored)
            telemetry.STATUS_TAKEN.inc()
            raise StatusTaken("the status was written by someone else; it is adopted")

    async def save_changes(self, status: VenueServiceStatus) -> bool:
        """`status` becomes `known`, and is stored when something worth a write changed since
        the last write (record.write_causes; its first cause labels the write). True: stored."""
        self.known = status
        # what was written is compared as its mark read back, not parsed and dumped again:
        # in a degraded fleet, four such passes a cycle were a third of a replica's CPU
        after = significant(status)
        mark = marked(after)
        causes = [] if mark == self._mark else causes_between(json.loads(self._mark), after)
        if causes:
            await self.save(status, causes[0], mark)
        self._steady = True  # stored, or nothing worth a write differs from what is
        self._keep_as_body()
        return bool(causes)
