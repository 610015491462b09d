"""Observations and specs the pure-core tests build on (shared; not a test module)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from venue_operator.guard.judge import GuardLimits
from venue_operator.model.observations import (
    MetricReadings,
    Observations,
    ProbeResult,
    Reading,
    WorkloadState,
)
from venue_operator.model.spec import VenueServiceSpec

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
SPEC = VenueServiceSpec.model_validate({"deployment": {"name": "venue-service"}})
# The rollout guard's tables: a watch begun at GUARD_T0, a new and an old pod-template hash.
GUARD_T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NEW, OLD = "new5f7c", "old6b9d"
GUARD_LIMITS = GuardLimits.from_spec(SPEC)
ONE_SHOT = VenueServiceSpec.model_validate(
    {"deployment": {"name": "v"}, "confirmation": {"breaches": 1, "recoveries": 1}}
)
HEALTHY_FULL = ProbeResult(status_code=200, checks={"database": "ok", "redis": "ok"})
HEALTHY_METRICS = MetricReadings(
    request_rate=Reading.of(20),
    requests_served=Reading.of(5000),
    error_rate=Reading.of(0.001),
    p99_latency=Reading.of(0.15),
    pool_utilisation=Reading.of(0.3),
    pool_pending=Reading.of(0),
    memory_utilisation=Reading.of(0.4),
    rate_limited=Reading.of(0),
)


def observe(**changes: object) -> Observations:
    base = Observations(
        at=NOW,
        health=ProbeResult(status_code=200),
        full_health=HEALTHY_FULL,
        metrics=HEALTHY_METRICS,
        workload=WorkloadState(found=True, desired=3, ready=3, revision=2),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def metrics(**readings: Reading) -> MetricReadings:
    return replace(HEALTHY_METRICS, **readings)  # type: ignore[arg-type]
