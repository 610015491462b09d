"""The fleet-wide action rate: a token bucket across the whole operator, so that a shared
outage (the database behind many services slowing down) never makes every VenueService
act at once. At most `per_minute` workload writes a minute (a burst of as many), whatever
the number of services; an action beyond it is held and escalated once per incident
(remediator.py). The cluster admin's cap: `--max-fleet-actions-per-minute`."""

from __future__ import annotations

import time
from collections.abc import Callable


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
