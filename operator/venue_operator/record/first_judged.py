"""How long a VenueService's loop waited for its first judged cycle, and on what.

A loop starts when its replica does, or when the replica takes the service over from one
that is gone (shards). `venue_operator_first_judged_seconds` says how long until its first
judged cycle; the log's `loop.first_judged` line says where the time went, phase by phase
(`wait_s`: the spread and the loop's lag before a cycle, and a whole interval for a cycle
skipped late; `read_s`: the stored status; then the workload (its Pods and ReplicaSets),
the probes and the metrics are read together: `workload_s` until the workload was read,
`observe_s` the rest).
"""

from __future__ import annotations

import time

import structlog

from venue_operator.record.telemetry import FIRST_JUDGED

log = structlog.get_logger(__name__)


class FirstJudged:
    def __init__(self, key: str) -> None:
        self.key = key
        self._since: float | None = time.monotonic()  # None once judged
        self._marked, self._phases = self._since, dict[str, float]()

    def mark(self, phase: str) -> None:
        """Until the first judged cycle: the seconds since the last mark were `phase`'s."""
        if self._since is not None:
            now = time.monotonic()
            self._phases[phase] = self._phases.get(phase, 0.0) + now - self._marked
            self._marked = now

    def judged(self) -> None:
        """A cycle was judged: the first one says how long it took, and on what."""
        if self._since is None:
            return
        after, self._since = time.monotonic() - self._since, None
        FIRST_JUDGED.observe(after)
        log.info("loop.first_judged", service=self.key, after_s=round(after, 2),
                 **{f"{p}_s": round(s, 2) for p, s in self._phases.items()})  # fmt: skip
