"""impact: what an open incident costs users (runbook P1 step 3, "assess impact"). Pure.

Each cycle integrates the failing request rate over the time since the last update
(trapezoids), service-wide and per tenant: rates come from Prometheus' rate(), which
already makes counter resets (a pod restarted, a rollback's new pods) harmless; a
negative, NaN or missing rate adds nothing, so the totals never go down. Tenants are
label values: bounded to the top `IMPACT_TENANTS` by failed requests, one line each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from venue_operator.assess.assessment import Assessment
from venue_operator.model.observations import MetricReadings, TenantRate
from venue_operator.model.status import (
    IMPACT_TENANTS,
    Impact,
    Incident,
    IncidentEntry,
    Level,
    TenantImpact,
    VenueServiceStatus,
)
from venue_operator.model.wording import fmt, rounded

TENANT_CHARS = 64
# Longer than this without a reading, the rate before the gap says nothing of the gap.
MAX_STEP = timedelta(minutes=5)


def _rate(value: float | None) -> float | None:
    """A usable rate, or None (unknown, NaN, infinite or negative: never subtracts)."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def _integrate(before: float | None, now: float | None, seconds: float) -> float:
    """Requests over `seconds` at rates `before` -> `now` (trapezoid; one side if one)."""
    known = [r for r in (before, now) if r is not None]
    return sum(known) / len(known) * seconds if known else 0.0


def _failing(metrics: MetricReadings) -> float | None:
    requests, share = _rate(metrics.request_rate.value), _rate(metrics.error_rate.value)
    return None if requests is None or share is None else requests * share


def _tenants(
    before: Sequence[TenantImpact], rates: Iterable[TenantRate], seconds: float,
    warning_percent: float,
) -> tuple[list[TenantImpact], int]:  # fmt: skip
    """The top tenants by failed requests, and how many are above the warning share now."""
    kept = {t.tenant: t for t in before}
    above = 0
    for rate in rates:
        name = rate.tenant[:TENANT_CHARS]
        failing, requests = _rate(rate.failing), _rate(rate.requests)
        if failing is None:
            continue
        percent = min(100.0, failing / requests * 100) if requests else None
        affected = percent is not None and percent > warning_percent
        above += affected
        old = kept.get(name)
        peaks = [p for p in (percent, old.error_percent if old else None) if p is not None]
        kept[name] = TenantImpact(
            tenant=name,
            failed_requests=_tenths((old.failed_requests if old else 0.0) + failing * seconds),
            error_percent=rounded(max(peaks)) if peaks else None,
            affected=affected or (old is not None and old.affected),
        )
    # a tenant that never failed is not part of the impact (its series exist all the same)
    hit = [t for t in kept.values() if t.failed_requests > 0 or t.affected]
    ranked = sorted(hit, key=lambda t: (-t.failed_requests, t.tenant))
    return ranked[:IMPACT_TENANTS], above


def _union(before: Iterable[str], now: Iterable[str]) -> list[str]:
    return sorted({*before, *now})[:32]


IMPACT_PREFIX = "impact: "  # marks the timeline lines this module writes


def assess_impact(
    previous: Impact | None, since: datetime, metrics: MetricReadings, a: Assessment,
    warning_percent: float, now: datetime,
) -> Impact:  # fmt: skip
    """The impact after this cycle: `previous` carried forward by the time since its update
    (or since `since`, the first breach observed, for the first)."""
    last = previous.updated_at if previous is not None else since
    seconds = max(0.0, (now - last).total_seconds())
    stale = seconds > MAX_STEP.total_seconds()
    failing = _failing(metrics)
    before = None if previous is None or stale else previous.failing_rate
    added = _integrate(before, failing, min(seconds, MAX_STEP.total_seconds()))
    tenants, above = _tenants(previous.top_tenants if previous else [], metrics.tenants,
                              min(seconds, MAX_STEP.total_seconds()), warning_percent)  # fmt: skip
    breaching = [c for c in a.checks if c.level in (Level.WARNING, Level.CRITICAL)]
    return Impact(
        updated_at=now,
        request_rate=_rounded(_rate(metrics.request_rate.value)),
        failing_rate=_rounded(failing),
        peak_failing_rate=max(
            _rounded(failing) or 0.0, previous.peak_failing_rate if previous else 0
        ),
        failed_requests=_tenths((previous.failed_requests if previous else 0.0) + added),
        tenants_affected=max(above, previous.tenants_affected if previous else 0),
        top_tenants=tenants,
        checks=_union(previous.checks if previous else [], (c.name for c in breaching)),
        sections=_union(previous.sections if previous else [], (c.section for c in breaching)),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else rounded(value)


def _tenths(count: float) -> float:
    """A running total to a tenth: readable in kubectl describe (133.7, not
    133.71693095293548), and fine enough that each cycle's few failed requests add up."""
    return round(count, 1)


def magnitude(count: float) -> int:
    """0 below 1, then 1 per power of ten: 1-9 -> 1, 10-99 -> 2, ..."""
    return 0 if count < 1 else int(math.log10(count)) + 1


def material(impact: Impact | None) -> object:
    """What of the impact is worth a status write and a timeline line: the order of
    magnitude of failed requests, how many tenants, which lead, which checks. The
    numbers themselves ride along with such a write (no write per cycle)."""
    if impact is None:
        return None
    leaders = [t.tenant for t in impact.top_tenants if t.failed_requests >= 1][:3]
    return [magnitude(impact.failed_requests), impact.tenants_affected, leaders,
            impact.checks, impact.sections]  # fmt: skip


def summary(impact: Impact) -> str:
    """One line: `~120 failed requests (failing 4.1/s of 21/s, peak 5/s); ...` (the rates
    at the line's time); a tenant's share is the highest it had."""
    rates = ""
    if impact.failing_rate is not None and impact.request_rate:
        rates = (f" (failing {fmt(impact.failing_rate, '/s')} of {fmt(impact.request_rate, '/s')}"
                 f", peak {fmt(impact.peak_failing_rate, '/s')})")  # fmt: skip
    text = f"~{impact.failed_requests:.0f} failed requests{rates}"
    named = most_failed(impact)
    if impact.tenants_affected or named:
        text += f"; {impact.tenants_affected} tenant(s) above the warning error share"
    if named:
        text += ", most failed: " + named
    return (text + runbook_of(impact))[:1000]


def most_failed(impact: Impact, share: str = "") -> str:
    """`tenant-b ~13 (35.5%), ...`: the (up to) three tenants that failed most, each with
    the highest error share it had (after `share`, e.g. "up to ")."""
    named = [t for t in impact.top_tenants if t.failed_requests >= 1][:3]
    return ", ".join(
        f"{t.tenant} ~{t.failed_requests:.0f}"
        + (f" ({share}{fmt(t.error_percent, '%')})" if t.error_percent is not None else "")
        for t in named
    )


def runbook_of(impact: Impact) -> str:
    """` [runbook: <sections>]`, or nothing."""
    return f" [runbook: {', '.join(impact.sections)}]" if impact.sections else ""


def with_impact_line(message: str, status: VenueServiceStatus) -> str:
    """An Event's (or a page's) message with the incident's impact, unless it says it."""
    incident = status.incident
    if incident is None or incident.impact is None or "impact:" in message:
        return message
    return f"{message}; impact: {summary(incident.impact)}"


def with_impact(
    status: VenueServiceStatus, a: Assessment, metrics: MetricReadings, warning_percent: float,
    interval: timedelta, now: datetime,
) -> VenueServiceStatus:  # fmt: skip
    """The open incident with this cycle's impact (and when it began, on its first cycle); a
    timeline line when the impact changed materially."""
    incident = status.incident
    if incident is None or incident.resolved_at is not None:
        return status
    if incident.began_at is None:
        incident = incident.model_copy(update={"began_at": began(incident, a, interval)})
    since = incident.began_at or incident.opened_at  # counted from the first breach observed
    impact = assess_impact(incident.impact, since, metrics, a, warning_percent, now)
    if material(impact) != material(incident.impact) and impact.failed_requests >= 1:
        entry = IncidentEntry(at=now, severity=incident.severity,
                              message=f"{IMPACT_PREFIX}{summary(impact)}")  # fmt: skip
        incident = incident.model_copy(update={"timeline": [*incident.timeline, entry][-100:]})
    return status.model_copy(update={"incident": incident.model_copy(update={"impact": impact})})


def began(incident: Incident, a: Assessment, interval: timedelta) -> datetime:
    """When the first breach was observed: confirmation took the breach streak's cycles."""
    streak = max((len(c.breach) for c in a.checks), default=1)
    return incident.opened_at - interval * max(0, streak - 1)
