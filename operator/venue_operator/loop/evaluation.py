"""One evaluation of one VenueService: observe -> assess -> the new status and its Events.

Kopf-free and write-free, so that `venue-operator check` runs the very same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from venue_operator.assess.assessment import Assessment, assess
from venue_operator.incident.impact import with_impact
from venue_operator.model.observations import (
    MetricReadings,
    Observations,
    ProbeFailure,
    ProbeResult,
    Reading,
    WorkloadRead,
    WorkloadState,
)
from venue_operator.model.spec import RUNBOOK_PORT, VenueServiceSpec
from venue_operator.model.status import Level, VenueServiceStatus
from venue_operator.observe import health
from venue_operator.observe.batcher import MetricsBatcher
from venue_operator.observe.http import Dialer, Link
from venue_operator.observe.metrics_source import Admitted, metrics_target
from venue_operator.observe.prometheus import TEMPLATES
from venue_operator.record import telemetry
from venue_operator.record.transitions import EventSpec, next_status, transition_events
from venue_operator.tenancy.policy import Tenancy, service_url_refusal

LATE_SKIPS = 3  # cycles in a row a service goes unjudged when its probes were taken late


@dataclass
class Context:
    """What a cycle needs from the running operator (or from `venue-operator check`)."""

    dialer: Dialer  # where the probes connect: the tenant-checked one (observe/targets.py)
    metrics: MetricsBatcher
    default_prometheus_url: str | None = None
    # Oldest shared metrics snapshot a cycle may use; None: half the probe interval. Set it
    # to Prometheus' scrape interval for detection at the floor (more queries, same for any N).
    metrics_max_age: float | None = None
    tenancy: Tenancy = field(default_factory=Tenancy)


@dataclass(frozen=True)
class Outcome:
    assessment: Assessment
    status: VenueServiceStatus
    events: list[EventSpec]
    observations: Observations
    refused: tuple[str, ...] = ()  # what the tenant boundaries refused to fetch or query


def default_service_url(spec: VenueServiceSpec, namespace: str) -> str:
    return f"http://{spec.deployment.name}.{namespace}.svc:{RUNBOOK_PORT}"


def service_url(spec: VenueServiceSpec, namespace: str) -> str:
    return (spec.service.url or default_service_url(spec, namespace)).rstrip("/")


async def _metrics(ctx: Context, admitted: Admitted, max_age: float) -> MetricReadings:
    if admitted.refused is not None:  # nothing fetched
        refused: dict[str, Any] = dict.fromkeys(TEMPLATES, Reading.unknown(admitted.refused))
        return MetricReadings(**refused)
    readings = await ctx.metrics.get(admitted.target, max_age=max_age)
    if not admitted.overrides_refused:
        return readings
    unknown: dict[str, Any] = {m: Reading.unknown(w) for m, w in admitted.overrides_refused.items()}
    return replace(readings, **unknown)


def expect_metrics(
    ctx: Context, namespace: str, name: str, spec: VenueServiceSpec, stored: VenueServiceStatus
) -> None:
    """Before a loop's first cycle: its metrics in the next read (observe/batcher.py)."""
    admitted = _admitted(ctx, namespace, name, spec, stored)
    if admitted.refused is None:
        ctx.metrics.expect(admitted.target)


def _admitted(
    ctx: Context, namespace: str, name: str, spec: VenueServiceSpec, stored: VenueServiceStatus
) -> Admitted:
    admitted = metrics_target(spec, namespace, name, ctx.default_prometheus_url, ctx.tenancy)
    return replace(admitted, target=replace(admitted.target, impact=wants_impact(stored)))


def wants_impact(stored: VenueServiceStatus) -> bool:
    """Tenants' traffic is read while an incident is open or a breach is being confirmed
    (so the incident's first cycle has it), not while the service is healthy."""
    open_ = stored.incident is not None and stored.incident.resolved_at is None
    return open_ or any(c.observed in (Level.WARNING, Level.CRITICAL) for c in stored.checks)


def _not_probed(reason: str) -> ProbeResult:
    return ProbeResult(ProbeFailure.NOT_ALLOWED, reason)


async def _probes(
    ctx: Context, base: str, spec: VenueServiceSpec, seconds: float
) -> tuple[ProbeResult, ProbeResult]:
    """/health, then /health/full on the same connection (a connect a cycle, not one a
    probe: it was most of a probe's CPU, ours and the service's); after a /health that failed
    (its connection dropped) /health/full gets a connection of its own."""
    link = Link(ctx.dialer)
    try:
        live = await health.probe(link, base + spec.service.health_path, seconds, last=False)
        full = await health.probe(link, base + spec.service.full_health_path, seconds)
    finally:
        link.close()
    return live, full


async def evaluate(
    ctx: Context,
    namespace: str,
    name: str,
    spec: VenueServiceSpec,
    stored: VenueServiceStatus,
    workload: WorkloadRead,
    generation: int | None,
) -> Outcome:
    """Observe, assess and compute the new status and Events; writes nothing. A workload
    still being read is awaited beside the probes and the metrics (a service taken over
    waited for its Pods and ReplicaSets, then for its probes and metrics: at 5,000 over 4,
    ~11 s and then ~14-21 s, p50)."""
    base = service_url(spec, namespace)
    timeout = spec.probe.timeout.total_seconds()
    interval = spec.probe.interval.total_seconds()
    admitted = _admitted(ctx, namespace, name, spec, stored)
    max_age = metrics_max_age(interval, ctx.metrics_max_age)
    refused = service_url_refusal(base, namespace, default_service_url(spec, namespace),
                                  ctx.tenancy)  # fmt: skip
    if refused is not None:
        live = full = _not_probed(refused)
        metrics, state = await asyncio.gather(_metrics(ctx, admitted, max_age), _read(workload))
    else:
        (live, full), metrics, state = await asyncio.gather(
            _probes(ctx, base, spec, timeout), _metrics(ctx, admitted, max_age), _read(workload)
        )
    if refused is None:  # an address the connector refused (observe/http.py): nothing fetched
        refused = next((p.detail for p in (live, full)
                        if p.failure is ProbeFailure.NOT_ALLOWED), None)  # fmt: skip
    obs = Observations(datetime.now(UTC), live, full, metrics, state)
    said = (refused, admitted.refused, *admitted.overrides_refused.values())
    return replace(judge(obs, spec, stored, generation), refused=tuple(r for r in said if r))


async def _read(workload: WorkloadRead) -> WorkloadState:
    return workload if isinstance(workload, WorkloadState) else await workload


def metrics_max_age(interval: float, flag: float | None) -> float:
    """`--metrics-max-age`, else half the interval; never over the interval: each cycle
    takes a read none of the service's other cycles took (observe/batcher.py), and a bound
    over the interval would read Prometheus less than once an interval, leaving some cycles
    none. (A slow Prometheus stretches the batcher's own bound: `oldest`.)"""
    return min(flag or interval / 2, interval)


def taken_late(obs: Observations) -> bool:
    """A probe of this cycle timed out only because the operator's own loop ran late."""
    return ProbeFailure.OPERATOR_LATE in (obs.health.failure, obs.full_health.failure)


class LateSkips:
    """A service's cycles in a row not judged because this replica's own event loop took
    their probes late (that says nothing of the service): at most LATE_SKIPS, then one is
    judged (its late probes read unknown). On a saturated replica, judging every such cycle
    unknown and the next one back wrote status and Events each time, saturating it more."""

    def __init__(self) -> None:
        self.count = 0

    def skipped(self, outcome: Outcome) -> bool:
        """Whether this cycle goes unjudged (nothing recorded, written, posted or acted on)."""
        if not taken_late(outcome.observations) or self.count >= LATE_SKIPS:
            self.count = 0
            return False
        self.count += 1
        telemetry.SKIPPED.labels("operator_late").inc()
        return True


def judge(
    obs: Observations, spec: VenueServiceSpec, stored: VenueServiceStatus, generation: int | None
) -> Outcome:
    """What the observations mean: the assessment, the new status and its Events. Pure."""
    a = assess(obs, spec, stored.checks)
    bake = spec.remediation.rollback.bake_time
    status = next_status(a, obs.workload, stored, obs.at, generation, bake)
    warning = spec.thresholds.error_rate_percent.warning
    status = with_impact(status, a, obs.metrics, warning, spec.probe.interval, obs.at)
    return Outcome(a, status, transition_events(stored, a), obs)
