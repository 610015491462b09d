"""The old version's baseline: what the service served over `rolloutGuard.baselineWindow`
before its template changed, from Prometheus, for a rollout that leaves no old pods to compare
with (maxSurge 100% with minReadySeconds 0, Recreate: the old pods are gone within a second or
two, before a read has counted anything of theirs).

Evaluated at the change (`@ <its time>`), so it is the old version's traffic whenever it is
asked: the service's series (its selector, namespace forced), by status code and tenant, and
its latency buckets. `increase()` here, unlike the per-pod counters (guard/pod_series.py):
there is no later read to difference against, and over minutes its extrapolation at the
window's edges is a few percent of the counts, rounded for Fisher's test. A window that spans
an earlier rollout mixes that version in; a dependency failing only after the change makes
the new version look worse than the baseline, which is why the old pods, while any are left,
are always what the new version is compared with (guard/judge.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from venue_operator.guard.pod_series import Query, ask_pair, le_bound, requested
from venue_operator.guard.tally import VersionTally
from venue_operator.model.durations import format_duration
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.observe.answers import Samples
from venue_operator.observe.prometheus import selector
from venue_operator.tenancy.promql_scope import Refused, scope_pair

REQUESTS = "sum by (status_code{by}) (increase(http_requests_total{{{sel}}}[{window}] @ {at}))"
BUCKETS = "sum by (le) (increase(http_request_duration_seconds_bucket{{{sel}}}[{window}] @ {at}))"


def baseline_queries(
    labels: dict[str, str], namespace: str, guard: RolloutGuard, changed_at: datetime
) -> tuple[str, str] | Refused:
    """The requests (by tenant too) and latency-bucket increases over the window before
    `changed_at`, within the service's selector and its namespace."""
    fields: dict[str, Any] = {
        "sel": selector(labels),
        "by": f", {guard.tenants.label}" if guard.tenants.max_tenants else "",
        "window": format_duration(guard.baseline_window),
        "at": f"{changed_at.timestamp():.3f}",
    }
    return scope_pair(REQUESTS.format(**fields), BUCKETS.format(**fields), namespace)


def baseline_tally(requests: Samples, buckets: Samples, guard: RolloutGuard) -> VersionTally:
    """The two answers as one tally (NaN and negative increases skipped)."""
    total = errors = 0.0
    tenants: dict[str, tuple[float, float]] = {}
    for sample in requests:
        counted = requested(sample, guard)
        if counted is None:
            continue
        value, failed, tenant = counted
        total, errors = total + value, errors + failed
        if tenant:
            was = tenants.get(tenant, (0.0, 0.0))
            tenants[tenant] = (was[0] + value, was[1] + failed)
    cumulative: dict[float, float] = {}
    for sample in buckets:
        count, le = sample.reading.value, le_bound(sample.labels.get("le"))
        if count is not None and count >= 0 and le is not None:
            cumulative[le] = count
    return VersionTally.of_window(total, errors, cumulative, tenants, guard.tenants.max_tenants)


async def read_baseline(
    query: Query, url: str, queries: tuple[str, str], guard: RolloutGuard
) -> VersionTally | str:
    """Both queries at once: the baseline, or why there is none."""
    answers = await ask_pair(query, url, queries,
                             ("query the old version's requests before the change",
                              "query the old version's latency before the change"))  # fmt: skip
    if isinstance(answers, str):
        return answers
    tally = baseline_tally(*answers, guard)
    if tally.requests <= 0:
        window = format_duration(guard.baseline_window)
        return f"Prometheus has no requests of the service in the {window} before the change"
    return tally
