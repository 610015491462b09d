"""Whether this replica runs a VenueService's loop now (shards: fleet/membership.py).

Without shards it always does. With them, a loop whose service the hash gives to another
member ends at its next cycle (one whose replica's own Lease renewal is late skips cycles
until it lands), and its guard
ticks stop at once (loop/turns.py builds a loop again when the service is taken on); a loop
starts from the stored status, since the member that had the service may have acted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from venue_operator.act import ActResult
from venue_operator.kube.status_store import StatusRead, StatusStore, StatusTaken, StatusWrite
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.status import GitOpsSuspension, ScaledKind
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Acts, Events, GitOpsActs

log = structlog.get_logger(__name__)


class Ownership:
    def __init__(
        self, key: str, holds: Callable[[str], int | None] | None, read: StatusRead | None,
        renewing: Callable[[], bool] = lambda: False,
    ) -> None:  # fmt: skip
        """`holds`: the epoch since which this replica owns `key`, or None; `renewing`: its
        own Lease's renewal is late, not known lapsed (fleet/membership.py)."""
        self.key, self._holds, self._read, self._renewing = key, holds, read, renewing
        self._epoch: int | None = None  # the epoch of the cycle running, while owned
        self.released = False  # owned, then found another's: the loop ends (loop/turns.py)

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

    def acts(self, acts: Acts, gitops: GitOpsActs | None) -> tuple[Acts, GitOpsActs | None]:
        """The loop's workload writes, made only while it owns the service: checked again at
        the write itself, since a replica may pause between the write-ahead record and it."""
        if self._holds is None:
            return acts, gitops
        return _OwnedActs(acts, gitops, self.still), None if gitops is None else _OwnedActs(
            acts, gitops, self.still
        )  # fmt: skip

    def still(self) -> bool:
        """Owned since the cycle began, without a gap (checked again before acting)."""
        if self._holds is None:
            return True
        return self._epoch is not None and self._holds(self.key) == self._epoch

    async def now(self, store: StatusStore, afresh: Callable[[], None] = lambda: None) -> bool:
        """At a cycle's start: owned now? Taken on (again, or after a gap in which the others
        may have run it): `store` reloads what is stored first, and `afresh` drops what the
        loop held in memory (a rollout's evidence, problems said) from before."""
        if self._holds is None:
            return True
        epoch = self._holds(self.key)
        if epoch is None and self._epoch is not None and self._renewing():
            # Not a cycle until the renewal lands; the loop is kept (letting go of every
            # service at each late renewal rebuilt them all: a status read each, their pods
            # listed again: 543 at once at 5,000 over 4 on a saturated API server)
            return False
        if epoch is None:
            if self._epoch is not None:
                log.info("shard.released", service=self.key)
            self._epoch, self.released = None, True
            return False
        if epoch != self._epoch and self._read is not None:
            store.reload(*await self._read())
            afresh()
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


class _OwnedActs:
    """Acts and GitOpsActs that refuse (StatusTaken: the cycle stops, nothing is written)
    once the service is no longer this replica's."""

    def __init__(
        self, acts: Acts, gitops: GitOpsActs | None, still: Callable[[], bool]
    ) -> None:  # fmt: skip
        self._acts, self._gitops, self._still = acts, gitops, still

    def _owned(self, doing: str) -> None:
        if not self._still():
            log.info("shard.act_not_taken", doing=doing)
            raise StatusTaken(f"this replica no longer owns the service (shards): not {doing}")

    async def roll_back(
        self, namespace: str, deployment: str, to_template: str, cause: str, rid: str,
        resume: bool = False,
    ) -> ActResult:  # fmt: skip
        self._owned("rolling back")
        return await self._acts.roll_back(namespace, deployment, to_template, cause, rid, resume)

    async def pause_rollout(self, namespace: str, deployment: str, rid: str) -> ActResult:
        self._owned("pausing the rollout")
        return await self._acts.pause_rollout(namespace, deployment, rid)

    async def set_count(
        self, namespace: str, kind: ScaledKind, name: str, value: int, scaled_from: int | None,
        expect: int | None = None,
    ) -> ActResult:  # fmt: skip
        self._owned("scaling")
        return await self._acts.set_count(namespace, kind, name, value, scaled_from, expect)

    async def run_migration(self, namespace: str, cronjob: str, rid: str) -> ActResult:
        self._owned("running the migration")
        return await self._acts.run_migration(namespace, cronjob, rid)

    async def migration_outcome(self, namespace: str, job: str) -> str | None:
        return await self._acts.migration_outcome(namespace, job)  # a read

    async def set_circuit(
        self, namespace: str, config_map: str, key: str, open_: bool, who: str, reason: str
    ) -> ActResult:
        self._owned("switching the circuit breaker")
        return await self._acts.set_circuit(namespace, config_map, key, open_, who, reason)

    async def suspend_gitops(
        self, ref: GitOpsRef, namespace: str, deployment: str, who: str, rid: str, now: datetime
    ) -> tuple[ActResult, GitOpsSuspension | None]:
        self._owned("suspending GitOps")
        assert self._gitops is not None
        return await self._gitops.suspend_gitops(ref, namespace, deployment, who, rid, now)
