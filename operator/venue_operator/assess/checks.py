"""The runbook's checks, pure: each one's runbook section and how it reads one cycle's
observations into a level, before hysteresis (hysteresis.py).

A value strictly above a limit crosses it (the runbook says "> 1%"): exactly at the warning
limit is ok, exactly at the critical limit is warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from venue_operator.model.observations import (
    Observations,
    ProbeFailure,
    ProbeResult,
    Reading,
)
from venue_operator.model.reasons import CHECK_SECTIONS
from venue_operator.model.spec import Threshold, VenueServiceSpec
from venue_operator.model.status import Level
from venue_operator.model.wording import clipped

DEPLOYMENT_NOT_FOUND = "Deployment not found"


@dataclass(frozen=True)
class Raw:
    """A check's reading this cycle, before hysteresis."""

    level: Level
    value: float | None = None
    unit: str | None = None
    threshold: Threshold | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Scale:
    """How a metric check reads Prometheus: `metric` (a reading, observe/prometheus.py)
    times `factor`, in `unit`, against the limits of `spec.thresholds.<threshold>`; `title`
    names it for people (the post-mortem's graphs)."""

    metric: str
    factor: float
    unit: str
    threshold: str
    title: str

    def limits(self, spec: VenueServiceSpec) -> Threshold:
        limits: Threshold = getattr(spec.thresholds, self.threshold)
        return limits


READINGS = {
    "error_rate": Scale("error_rate", 100, "%", "error_rate_percent", "Error rate (5xx share)"),
    "p99_latency": Scale("p99_latency", 1000, "ms", "p99_latency_ms", "P99 latency"),
    "pool_utilisation": Scale("pool_utilisation", 100, "%", "pool_utilisation_percent",
                              "DB pool utilisation"),
    "pool_pending": Scale("pool_pending", 1, "", "pool_pending", "DB pool: requests waiting"),
    "memory": Scale("memory_utilisation", 100, "%", "memory_percent",
                    "Memory (resident / limit)"),
    "rate_limited": Scale("rate_limited", 100, "%", "rate_limited_percent",
                          "Rate-limited (429 share)"),
}  # fmt: skip


REASON_LIMIT = 1000  # CheckStatus.reason holds 1,024: cut where a reason is made


def clip(text: str | None, limit: int = REASON_LIMIT) -> str | None:
    """At most `limit` characters, marked when cut (a check value can be a long error)."""
    return None if text is None else clipped(text, limit)


def level_of(value: float, threshold: Threshold) -> Level:
    """Strictly above critical -> critical; strictly above warning -> warning."""
    if value > threshold.critical:
        return Level.CRITICAL
    if value > threshold.warning:
        return Level.WARNING
    return Level.OK


def _metric(reading: Reading, threshold: Threshold, scale: float, unit: str) -> Raw:
    if reading.value is None:
        return Raw(Level.UNKNOWN, unit=unit, threshold=threshold, reason=reading.unknown_reason)
    value = round(reading.value * scale, 3)
    return Raw(level_of(value, threshold), value, unit, threshold)


def _probe(probe: ProbeResult) -> Raw:
    if probe.ok:
        return Raw(Level.OK, value=probe.status_code)
    if probe.failure in _NOT_THE_SERVICE:  # not probed, or not judged: unknown, never "down"
        return Raw(Level.UNKNOWN, reason=probe.detail)
    reason = f"{probe.failure}: {probe.detail}" if probe.detail else str(probe.failure)
    return Raw(Level.CRITICAL, value=probe.status_code, reason=reason)


_NOT_THE_SERVICE = {ProbeFailure.NOT_ALLOWED, ProbeFailure.OPERATOR_LATE}
_FAILED = {
    ProbeFailure.CONNECTION_REFUSED: "connection refused",
    ProbeFailure.TIMEOUT: "timed out",
    ProbeFailure.UNREACHABLE: "unreachable",
    ProbeFailure.HTTP_STATUS: "an HTTP error",
    ProbeFailure.INVALID_JSON: "not JSON",
    ProbeFailure.CHECK_FAILING: "a check failing",
    ProbeFailure.OPERATOR_LATE: "the operator ran late",
}


def _dependency(probe: ProbeResult, key: str) -> Raw:
    state = probe.checks.get(key)
    if state is None and probe.failure is ProbeFailure.NOT_ALLOWED:
        return Raw(Level.UNKNOWN, reason="/health/full was not probed: the tenant boundaries "
                                         "refuse its address")  # fmt: skip
    if state is None:
        failure = probe.failure
        why = f"no checks.{key}" if failure is None else _FAILED.get(failure, str(failure))
        return Raw(Level.UNKNOWN, reason=f"/health/full gave no {key} state ({why})")
    if state == "ok":
        return Raw(Level.OK)
    return Raw(Level.CRITICAL, reason=f"checks.{key} = {state!r}")


def _migrations(probe: ProbeResult) -> Raw:
    state = probe.checks.get("migrations")
    if state in (None, "ok"):
        return Raw(Level.OK)
    return Raw(Level.CRITICAL, reason=f"checks.migrations = {state!r}")


def _pods(obs: Observations) -> Raw:
    w = obs.workload
    if w.unreadable:
        return Raw(Level.UNKNOWN, reason=clip(f"cannot read the workload: {w.unreadable}"))
    if not w.found:
        return Raw(Level.UNKNOWN, reason=DEPLOYMENT_NOT_FOUND)
    value = float(w.ready)
    if w.desired > 0 and w.ready == 0:
        return Raw(Level.CRITICAL, value, "pods", reason=f"0/{w.desired} pods ready")
    if w.crash_looping:
        reason = f"{w.crash_looping} pod(s) in CrashLoopBackOff, {w.ready}/{w.desired} ready"
        return Raw(Level.CRITICAL, value, "pods", reason=reason)
    if w.ready < w.desired:
        return Raw(Level.WARNING, value, "pods", reason=f"{w.ready}/{w.desired} pods ready")
    return Raw(Level.OK, value, "pods")


def request_rate(obs: Observations) -> Reading:
    """Requests per second. A service that never served a request has no request counter
    series at all (client libraries create it on first use): while its other series are
    scraped, that is 0 req/s, not a blind spot (an idle service would never bake)."""
    m = obs.metrics
    never = m.requests_served.no_series
    scraped = m.memory_utilisation.value is not None
    if m.request_rate.value is None and never and scraped:
        return Reading.of(0.0)
    return m.request_rate


def _per_request(obs: Observations, spec: VenueServiceSpec, check: str) -> Raw:
    """A check computed over requests (a share, a quantile) is not judged below
    `confirmation.minRequestRate`: over a handful of requests it means nothing, and over
    none it is missing (an idle service would flicker to unknown and never bake)."""
    scale = READINGS[check]
    reading, threshold, unit = getattr(obs.metrics, scale.metric), scale.limits(spec), scale.unit
    rate = request_rate(obs)
    minimum = spec.confirmation.min_request_rate
    if rate.value is not None and rate.value < minimum:
        reason = f"not judged: {rate.value:.2f} req/s is below the minimum {minimum:g} req/s"
        return Raw(Level.OK, unit=unit, threshold=threshold, reason=reason)
    if rate.value is None and reading.value is None:
        return Raw(Level.UNKNOWN, unit=unit, threshold=threshold, reason=rate.unknown_reason)
    return _metric(reading, threshold, scale.factor, unit)


def _error_rate(obs: Observations, spec: VenueServiceSpec) -> Raw:
    scale = READINGS["error_rate"]
    rate = request_rate(obs)
    if rate.value is None:
        return Raw(Level.UNKNOWN, unit=scale.unit, threshold=scale.limits(spec),
                   reason=rate.unknown_reason)  # fmt: skip
    return _per_request(obs, spec, "error_rate")


def _p99_latency(obs: Observations, spec: VenueServiceSpec) -> Raw:
    return _per_request(obs, spec, "p99_latency")


def _rate_limited(obs: Observations, spec: VenueServiceSpec) -> Raw:
    raw = _per_request(obs, spec, "rate_limited")
    tenants = obs.metrics.top_limited_tenants
    if raw.level in (Level.WARNING, Level.CRITICAL) and tenants:
        top = ", ".join(f"{name} {rate:.1f}/s" for name, rate in tenants[:3])
        return Raw(raw.level, raw.value, raw.unit, raw.threshold, f"top tenants: {top}")
    return raw


def _scaled(obs: Observations, spec: VenueServiceSpec, check: str) -> Raw:
    scale = READINGS[check]
    return _metric(getattr(obs.metrics, scale.metric), scale.limits(spec), scale.factor,
                   scale.unit)  # fmt: skip


_READERS: dict[str, Callable[[Observations, VenueServiceSpec], Raw]] = {
    "health": lambda o, s: _probe(o.health),
    "database": lambda o, s: _dependency(o.full_health, "database"),
    "redis": lambda o, s: _dependency(o.full_health, "redis"),
    "migrations": lambda o, s: _migrations(o.full_health),
    "pods": lambda o, s: _pods(o),
    "error_rate": _error_rate,
    "p99_latency": _p99_latency,
    "pool_utilisation": lambda o, s: _scaled(o, s, "pool_utilisation"),
    "pool_pending": lambda o, s: _scaled(o, s, "pool_pending"),
    "memory": lambda o, s: _scaled(o, s, "memory"),
    "rate_limited": _rate_limited,
}
# name -> (runbook section, how to read it). Order is the order shown in status.
CHECKS = {name: (CHECK_SECTIONS[name], read) for name, read in _READERS.items()}
METRIC_CHECKS = (
    "error_rate",
    "p99_latency",
    "pool_utilisation",
    "pool_pending",
    "memory",
    "rate_limited",
)
