"""The fleet-wide action rate: a token bucket across the whole operator, so that a shared
outage (the database behind many services slowing down) never makes every VenueService
act at once. At most `per_minute` workload writes a minute (a burst of as many), whatever
the number of services; an action beyond it is held and escalated once per incident
(remediator.py). The cluster admin's cap: `--max-fleet-actions-per-minute`.

With shards the members split it (`ShardedRate`) rather than count each other's actions: a
count read from the others' Leases is a renewal old, so two members could both spend the
fleet's last token; a split is never over the cap, at the price that one member's burst is
its share, not the fleet's whole minute."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol


class Rate(Protocol):
    per_minute: int

    def take(self) -> bool: ...

    def describe(self) -> str: ...


class FleetRate:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._tokens = float(per_minute)
        self._at = clock()

    def take(self) -> bool:
        """One action's token, if the fleet has one left now."""
        now = self.clock()
        refill = (now - self._at) * self.per_minute / 60
        self._tokens, self._at = min(float(self.per_minute), self._tokens + refill), now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def describe(self) -> str:
        return f"the operator's fleet-wide rate of {self.per_minute} actions a minute"


class ShardedRate:
    """The fleet's tokens as slots of wall-clock time, one every 60/`per_minute` s (slot k
    at k * 60/per_minute s since the epoch); slot k is the member's at k mod N of the
    sorted live members, spendable by it for a minute (a full bucket holds a minute's
    tokens). The members' slots are disjoint, so together they spend at most what one
    bucket would, and each gets every N-th slot even when `per_minute` < N. The slots spent
    are published (fleet/exchange.py): a member that takes over slots when the members
    change skips those the others said they spent."""

    def __init__(
        self, per_minute: int, me: str, members: Callable[[], Sequence[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.per_minute, self.me, self.members, self.clock = per_minute, me, members, clock
        self._mine: set[int] = set()  # slots this member spent
        self._theirs: set[int] = set()  # slots the others said they spent

    def _window(self) -> range:
        """The slots of the last minute, oldest first."""
        newest = int(self.clock() * self.per_minute // 60)
        return range(newest - self.per_minute + 1, newest + 1)

    def share(self) -> tuple[int, int] | None:
        """(this member's place, the members), or None while it is not among them."""
        members = tuple(self.members())
        return (members.index(self.me), len(members)) if self.me in members else None

    def take(self) -> bool:
        share = self.share()
        if share is None:
            return False
        window = self._window()
        self._mine = {s for s in self._mine if s >= window.start}
        self._theirs = {s for s in self._theirs if s >= window.start}
        for slot in window:
            if slot % share[1] == share[0] and slot not in self._mine and slot not in self._theirs:
                self._mine.add(slot)
                return True
        return False

    def spent(self) -> tuple[int, ...]:
        """The slots this member spent within the last minute (to publish)."""
        start = self._window().start
        return tuple(sorted(s for s in self._mine if s >= start))

    def seen(self, slots: Iterable[int], per_minute: int) -> None:
        """Slots another member spent; ignored when its rate is not ours (the slots differ)."""
        if per_minute == self.per_minute:
            start = self._window().start
            self._theirs.update(s for s in slots if s >= start)

    def describe(self) -> str:
        members = len(tuple(self.members())) or 1
        return (f"the fleet-wide rate of {self.per_minute} actions a minute, split across "
                f"{members} shards (this replica's share: one slot in {members}, "
                f"{self.per_minute / members:.3g} a minute)")  # fmt: skip
