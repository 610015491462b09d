"""Whether this replica runs a VenueService's loop now (shards: fleet/membership.py).

Without shards it always does. With them, a loop whose service the hash gives to another
member (or whose replica's own Lease may have lapsed) skips its cycles and guard ticks; taken
on again, it starts from the stored status, since the member that had it may have acted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from venue_operator.kube.status_store import StatusRead, StatusStore, StatusTaken, StatusWrite
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Events

log = structlog.get_logger(__name__)


class Ownership:
    def __init__(
        self, key: str, holds: Callable[[str], int | None] | None, read: StatusRead | None
    ) -> None:
        """`holds`: the epoch this replica owns `key` in, or None (fleet/membership.py)."""
        self.key, self._holds, self._read = key, holds, read
        self._epoch: int | None = None  # the epoch of the cycle running, while owned

    def events(self, events: Events) -> Events:
        """The loop's Events, posted only while it owns the service: a replica paused
        mid-cycle past its Lease and resumed says nothing about a service another runs."""
        return events if self._holds is None else _OwnedEvents(events, self.still)

    def writes(self, write: StatusWrite) -> StatusWrite:
        """The loop's status writes, made only while it owns the service (the same)."""
        if self._holds is None:
            return write

        async def owned(body: dict[str, Any], resource_version: str | None) -> str | None:
            if not self.still():
                raise StatusTaken("this replica no longer owns the service (shards)")
            return await write(body, resource_version)

        return owned

    def still(self) -> bool:
        """Owned since the cycle began, without a gap (checked again before acting)."""
        if self._holds is None:
            return True
        return self._epoch is not None and self._holds(self.key) == self._epoch

    async def now(self, store: StatusStore) -> bool:
        """At a cycle's start: owned now? Taken on (again, or after a gap in which the others
        may have run it): `store` reloads what is stored first."""
        if self._holds is None:
            return True
        epoch = self._holds(self.key)
        if epoch is None:
            if self._epoch is not None:
                log.info("shard.released", service=self.key)
            self._epoch = None
            return False
        if epoch != self._epoch and self._read is not None:
            store.reload(*await self._read())
            log.info("shard.taken_over", service=self.key, epoch=epoch)
        self._epoch = epoch
        return True


class _OwnedEvents:
    def __init__(self, events: Events, still: Callable[[], bool]) -> None:
        self._events, self._still = events, still

    async def post(self, ref: dict[str, Any] | None, event: EventSpec) -> None:
        if self._still():
            await self._events.post(ref, event)
        else:
            log.info("shard.event_not_posted", reason=str(event.reason))

    async def post_once(self, ref: dict[str, Any] | None, event: EventSpec, key: str) -> bool:
        if self._still():
            return await self._events.post_once(ref, event, key)
        log.info("shard.event_not_posted", reason=str(event.reason))
        return False
