"""One evaluation of one VenueService: observe -> assess -> the new status and its Events.

Kopf-free and write-free, so that `venue-operator check` runs the very same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from venue_operator.assess import Assessment, assess
from venue_operator.durations import format_duration
from venue_operator.model import RUNBOOK_PORT, VenueServiceSpec, VenueServiceStatus
from venue_operator.observations import Observations, WorkloadState
from venue_operator.observe import health
from venue_operator.observe.batcher import MetricsBatcher
from venue_operator.observe.prometheus import TEMPLATES, Target
from venue_operator.record import EventSpec, next_status, transition_events


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
