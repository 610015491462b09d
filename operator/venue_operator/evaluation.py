"""One evaluation of one VenueService: observe -> assess -> the new status and its Events.

Kopf-free and write-free, so that `venue-operator check` runs the very same code.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from venue_operator.assess import Assessment, assess
from venue_operator.durations import format_duration
from venue_operator.model import RUNBOOK_PORT, VenueServiceSpec, VenueServiceStatus
from venue_operator.observations import MetricReadings, Observations, WorkloadState
from venue_operator.observe import health
from venue_operator.observe.prometheus import TEMPLATES, PrometheusReader, Target
from venue_operator.record import EventSpec, next_status, transition_events


@dataclass
class MetricsBatcher:
    """Single-flight snapshots: one refresh reads every registered service at once, so a
    cycle costs a few Prometheus queries whatever the number of VenueServices."""

    reader: PrometheusReader
    targets: dict[str, Target] = field(default_factory=dict)
    snapshot: dict[str, tuple[float, MetricReadings]] = field(default_factory=dict)
    _inflight: asyncio.Task[None] | None = None
    _duration: float = 0.0  # of the last refresh

    def forget(self, key: str) -> None:
        self.targets.pop(key, None)
        self.snapshot.pop(key, None)

    async def get(self, target: Target, max_age: float) -> MetricReadings:
        self.targets[target.key] = target
        for _ in range(2):  # a refresh already running may predate this target
            taken = self.snapshot.get(target.key)
            if taken and self.targets[target.key] == target:
                age = time.monotonic() - taken[0]
                if age <= max_age:
                    if age > max_age - self._duration:
                        self._kick()  # ahead of need: later cycles need not wait for it
                    return taken[1]
            await asyncio.shield(self._kick())
        taken = self.snapshot.get(target.key)
        return taken[1] if taken else MetricReadings()

    def _kick(self) -> asyncio.Task[None]:
        """The refresh in flight, or a new one."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._read_all())
        return self._inflight

    async def _read_all(self) -> None:
        started = time.monotonic()
        readings = await self.reader.read(list(self.targets.values()))
        for key, value in readings.items():
            self.snapshot[key] = (started, value)
        self._duration = time.monotonic() - started


@dataclass
class Context:
    """What a cycle needs from the running operator (or from `venue-operator check`)."""

    http: aiohttp.ClientSession  # for health probes
    metrics: MetricsBatcher
    default_prometheus_url: str | None = None
    # Oldest shared metrics snapshot a cycle may use; None: half the probe interval. Set it
    # to Prometheus' scrape interval for detection at the floor (more queries, same for any N).
    metrics_max_age: float | None = None


@dataclass(frozen=True)
class Outcome:
    assessment: Assessment
    status: VenueServiceStatus
    events: list[EventSpec]
    observations: Observations


def service_url(spec: VenueServiceSpec, namespace: str) -> str:
    default = f"http://{spec.deployment.name}.{namespace}.svc:{RUNBOOK_PORT}"
    return (spec.service.url or default).rstrip("/")


def metrics_target(
    spec: VenueServiceSpec, namespace: str, name: str, fallback_url: str | None
) -> Target:
    labels = dict(spec.prometheus.match_labels) or {
        "namespace": namespace,
        "service": spec.deployment.name,
    }
    overrides = {
        metric: query
        for metric, query in spec.prometheus.queries.model_dump().items()
        if query is not None and metric in TEMPLATES
    }
    return Target(
        key=f"{namespace}/{name}",
        url=spec.prometheus.url or fallback_url,
        labels=labels,
        window=format_duration(spec.prometheus.rate_window),
        overrides=overrides,
    )


async def evaluate(
    ctx: Context,
    namespace: str,
    name: str,
    spec: VenueServiceSpec,
    stored: VenueServiceStatus,
    workload: WorkloadState,
    generation: int | None,
) -> Outcome:
    """Observe, assess and compute the new status and Events; writes nothing."""
    base = service_url(spec, namespace)
    timeout = spec.probe.timeout.total_seconds()
    interval = spec.probe.interval.total_seconds()
    target = metrics_target(spec, namespace, name, ctx.default_prometheus_url)
    live, full, metrics = await asyncio.gather(
        health.probe(ctx.http, base + spec.service.health_path, timeout),
        health.probe(ctx.http, base + spec.service.full_health_path, timeout),
        ctx.metrics.get(target, max_age=min(interval / 2, ctx.metrics_max_age or interval)),
    )
    obs = Observations(datetime.now(UTC), live, full, metrics, workload)
    return judge(obs, spec, stored, generation)


def judge(
    obs: Observations, spec: VenueServiceSpec, stored: VenueServiceStatus, generation: int | None
) -> Outcome:
    """What the observations mean: the assessment, the new status and its Events. Pure."""
    a = assess(obs, spec, stored.checks)
    bake = spec.remediation.rollback.bake_time
    status = next_status(a, obs.workload, stored, obs.at, generation, bake)
    return Outcome(a, status, transition_events(stored, a), obs)
