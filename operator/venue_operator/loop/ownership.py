"""Whether this replica runs a VenueService's loop now (shards: fleet/membership.py).

Without shards it always does. With them, a loop whose service the hash gives to another
member (or whose replica's own Lease may have lapsed) skips its cycles and guard ticks; taken
on again, it starts from the stored status, since the member that had it may have acted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from venue_operator.kube.status_store import StatusRead, StatusStore
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Events

log = structlog.get_logger(__name__)


class Ownership:
    def __init__(
        self, key: str, owns: Callable[[str], bool] | None, read: StatusRead | None,
        store: StatusStore,
    ) -> None:  # fmt: skip
        self.key, self._owns, self._read, self._store = key, owns, read, store
        self.owned = True
        if owns is not None:
            store.may_write = self.still

    def events(self, events: Events) -> Events:
        """The loop's Events, posted only while it owns the service (its status writes are
        checked by the store): a replica paused mid-cycle past its Lease and resumed says
        nothing about a service another replica now runs."""
        return events if self._owns is None else _OwnedEvents(events, self.still)

    def still(self) -> bool:
        """Owned at the cycle's start and now (checked again before acting)."""
        return self._owns is None or (self.owned and self._owns(self.key))

    async def now(self) -> bool:
        """At a cycle's start: owned now? Taken on again: the store reloads what is stored."""
        if self._owns is None:
            return True
        if not self._owns(self.key):
            if self.owned:
                log.info("shard.released", service=self.key)
            self.owned = False
            return False
        if not self.owned and self._read is not None:
            self._store.reload(*await self._read())
            log.info("shard.taken_over", service=self.key)
        self.owned = True
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
