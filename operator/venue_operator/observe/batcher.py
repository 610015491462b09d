"""The shared metrics snapshot: one read for many services, per Prometheus URL."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from venue_operator.model.observations import MetricReadings, Reading
from venue_operator.observe.health import LATE_S
from venue_operator.observe.prometheus import TEMPLATES, PrometheusReader, Target
from venue_operator.record import loop_lag, telemetry
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)


@dataclass
class _Refresh:
    """One Prometheus URL's single-flight refresh."""

    task: asyncio.Task[None] | None = None
    duration: float = 0.0  # of the last refresh


@dataclass
class MetricsBatcher:
    """Single-flight snapshots per Prometheus URL: one refresh reads every registered
    service of that URL at once, so a cycle costs a few queries whatever the number of
    VenueServices, and a slow URL delays only the services that use it."""

    reader: PrometheusReader
    # Longest a `get` waits for a refresh; None: the longest a read can take.
    wait: float | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    # key -> (read at, the target as read, its readings)
    snapshot: dict[str, tuple[float, Target, MetricReadings]] = field(default_factory=dict)
    # key -> when the read it was last served started: a cycle never judges a read twice
    served: dict[str, float] = field(default_factory=dict)
    _refreshes: dict[str | None, _Refresh] = field(default_factory=dict)

    def forget(self, key: str) -> None:
        """Drop a service from every batch (a refresh in flight will not put it back)."""
        target = self.targets.pop(key, None)
        self.snapshot.pop(key, None)
        self.served.pop(key, None)
        if target is not None:
            self._drop_unused(target.url)

    def expect(self, target: Target) -> None:
        """A service about to run its first cycle (a start, a takeover): in the next read,
        begun now unless one is under way, so that its first cycle finds it read (a
        takeover's first cycles waited for the read under way, then one of their own)."""
        if target.key not in self.targets:
            self.targets[target.key] = target
            self._kick(target.url)

    async def get(self, target: Target, max_age: float) -> MetricReadings:
        """Readings of this very target (after a spec edit, read afresh) at most `max_age`
        old (`oldest`) and never served to it before (so two cycles never count one reading
        twice towards a confirmation), or unknown readings once `wait` is over."""
        previous = self.targets.get(target.key)
        self.targets[target.key] = target
        if previous is not None and previous.url != target.url:
            self._drop_unused(previous.url)
        wait = self.wait if self.wait is not None else self.reader.longest_read
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        refresh = self._refresh(target.url)
        for _ in range(2):  # a refresh already running may predate this target
            allowed = oldest(max_age, refresh.duration)
            taken = self._unserved(target)
            if taken:
                age = time.monotonic() - taken[0]
                if age <= allowed:
                    if age > allowed - refresh.duration:
                        self._kick(target.url)  # ahead of need: later cycles need not wait
                    return self._serve(target.key, taken)
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self._kick(target.url))
            except TimeoutError:
                return _unknown(f"metrics not read within {wait:g}s: {_slow()}")
        taken = self._unserved(target)  # the second refresh included this target
        if taken:
            return self._serve(target.key, taken)
        return _unknown("metrics not read: see the operator's log")

    def _unserved(self, target: Target) -> tuple[float, Target, MetricReadings] | None:
        """The target's snapshot, if read for this very target and not served to it yet."""
        taken = self.snapshot.get(target.key)
        if taken and taken[1] == target and taken[0] > self.served.get(target.key, -math.inf):
            return taken
        return None

    def _serve(self, key: str, taken: tuple[float, Target, MetricReadings]) -> MetricReadings:
        self.served[key] = taken[0]
        telemetry.METRICS_AGE.observe(time.monotonic() - taken[0])
        return taken[2]

    def _refresh(self, url: str | None) -> _Refresh:
        return self._refreshes.setdefault(url, _Refresh())

    def _drop_unused(self, url: str | None) -> None:
        """Forget the refresh of a URL no registered service uses any more."""
        refresh = self._refreshes.get(url)
        in_use = any(t.url == url for t in self.targets.values())
        if refresh is not None and not in_use and (refresh.task is None or refresh.task.done()):
            del self._refreshes[url]

    def _kick(self, url: str | None) -> asyncio.Task[None]:
        """The refresh of `url` in flight, or a new one."""
        refresh = self._refresh(url)
        if refresh.task is None or refresh.task.done():
            refresh.task = asyncio.create_task(self._read(url, refresh))
        return refresh.task

    async def _read(self, url: str | None, refresh: _Refresh) -> None:
        started = time.monotonic()
        targets = [t for t in self.targets.values() if t.url == url]
        try:
            readings = await self.reader.read(targets)
        except Exception:  # read() never raises; if it ever does, this URL alone goes unread
            log.exception("metrics.refresh_failed", url=redact(str(url)))
            return
        for target in targets:
            # forgotten or edited while being read: not put back, not served as current
            if self.targets.get(target.key) == target and target.key in readings:
                self.snapshot[target.key] = (started, target, readings[target.key])
        refresh.duration = time.monotonic() - started


def oldest(max_age: float, duration: float) -> float:
    """The oldest snapshot a cycle takes: `max_age`, or twice a read when Prometheus takes
    longer than half of that to answer. A snapshot is as old as its read when it lands, so a
    bound under that would have every cycle wait for a read that is too old once read (at
    5,000 services on a saturated machine, reads of 10-20 s against 7.5: every cycle waited,
    then judged its metrics unknown); at twice a read, back-to-back reads serve every cycle
    without a wait, their readings one to two reads old (`venue_operator_metrics_age_seconds`)."""
    return max(max_age, 2 * duration)


def _slow() -> str:
    """Who was slow: this replica's own event loop, when it ran late meanwhile."""
    late = loop_lag.lag()
    if late > LATE_S:
        return f"this replica's event loop ran {late:.1f}s late (short of CPU)"
    return "Prometheus is slow"


def _unknown(reason: str) -> MetricReadings:
    readings: dict[str, Any] = dict.fromkeys(TEMPLATES, Reading.unknown(reason))
    return MetricReadings(**readings)
