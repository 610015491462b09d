"""The rollout guard's fallback where pods cannot be reached on podIP:3002 (a NetworkPolicy
that lets Prometheus in, not the operator): each pod's counters from its series labelled by
`pod`, as a ServiceMonitor or PodMonitor scrape labels them.

Raw counters, not increase(): the last scraped totals of each pod's process, which the guard
differences between reads exactly as it does a direct read (guard/judge.py). A restart
between two reads is then a drop like any other, and the counts stay whole numbers for
Fisher's test (increase() extrapolates to the edges of its window). A pod without series (not
scraped yet, or its scrapes failing: Prometheus marks the series stale) stays unreachable,
never a zero. The queries carry the VenueService's own selector with its namespace forced
(tenancy/promql_scope.py), like every query a tenant's spec shapes. When none of the pods has
series, two counts say which label is missing: the selector's (`prometheus.matchLabels`) or
`pod` (the scrape must keep it, as a PodMonitor does).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from venue_operator.guard.judge import PodSample
from venue_operator.guard.tenants import Counts, busiest
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.model.status import GuardSource
from venue_operator.observe.answers import Sample, Samples
from venue_operator.observe.prometheus import (
    MAX_MATCHER_CHARS,
    TENANT_CHARS,
    regex_string,
    selector,
)
from venue_operator.tenancy.promql_scope import Refused, scope_pair
from venue_operator.tenancy.redact import one_line

POD = "pod"
REQUESTS = "sum by (pod, status_code{by}) (http_requests_total{{{sel}}})"
BUCKETS = "sum by (pod, le) (http_request_duration_seconds_bucket{{{sel}}})"

# (url, promql, what was asked) -> the instant vector, or why there is none
Query = Callable[[str, str, str], Awaitable[Samples | str]]


@dataclass(frozen=True)
class PodCounters:
    """One pod's totals as Prometheus last scraped them (every route summed)."""

    requests: float = 0.0
    errors: float = 0.0  # the 5xx among them
    buckets: Mapping[float, float] = field(default_factory=dict)  # le -> cumulative count
    tenants: Counts = field(default_factory=dict)  # the busiest tenants' requests and 5xx


def pod_queries(
    labels: Mapping[str, str], namespace: str, pods: Iterable[str], guard: RolloutGuard
) -> tuple[str, str] | Refused:
    """The requests (by tenant too) and latency-bucket queries for `pods`, within the
    service's selector and its namespace; a pod list too long for a URL reads the service's
    every pod."""
    names = regex_string(pods)
    only = f"{POD}=~{names}" if len(names) <= MAX_MATCHER_CHARS else f'{POD}!=""'
    sel = f"{selector(labels)},{only}"
    by = f", {guard.tenants.label}" if guard.tenants.max_tenants else ""
    return scope_pair(REQUESTS.format(sel=sel, by=by), BUCKETS.format(sel=sel, by=by), namespace)


def label_queries(labels: Mapping[str, str], namespace: str) -> tuple[str, str] | Refused:
    """Counts of the service's request series, and of those labelled `pod`."""
    sel = selector(labels)
    return scope_pair(f"count(http_requests_total{{{sel}}})",
                      f'count(http_requests_total{{{sel},{POD}!=""}})', namespace)  # fmt: skip


async def missing_labels(query: Query, url: str, labels: Mapping[str, str], namespace: str) -> str:
    """Why Prometheus had no series for the pods, naming the labels the fallback needs."""
    wanted = selector(labels)
    wanted = wanted if len(wanted) <= 200 else wanted[:200] + "..."
    counts = label_queries(labels, namespace)
    if isinstance(counts, Refused):
        return f"label query refused: {counts.reason}"
    asked = ("count the service's series", "count the service's series by pod")
    answers = await ask_pair(query, url, counts, asked)
    if isinstance(answers, str):
        return answers
    every, by_pod = answers
    if not every:
        return (f"Prometheus has no http_requests_total series with {{{wanted}}}: set "
                f"spec.prometheus.matchLabels to labels this service's series carry")  # fmt: skip
    if not by_pod:
        return (f"Prometheus has series with {{{wanted}}} but none labelled `{POD}`: the "
                f"guard needs each pod's series labelled `{POD}` (a PodMonitor, or a "
                f"ServiceMonitor's pod target label)")  # fmt: skip
    return f"Prometheus has no series with {{{wanted}}} labelled `{POD}` by these pods' names yet"


def requested(sample: Sample, guard: RolloutGuard) -> tuple[float, float, str | None] | None:
    """One sample of http_requests_total: its count, the 5xx among it, and its tenant (cut
    to TENANT_CHARS; None when tenants are not followed); None without a usable count."""
    value = sample.reading.value
    if value is None or not value >= 0:  # none, NaN, or a negative increase
        return None
    failed = value if sample.labels.get("status_code", "").startswith("5") else 0.0
    tenant = sample.labels.get(guard.tenants.label) if guard.tenants.max_tenants else None
    return value, failed, one_line(tenant, TENANT_CHARS) if tenant else None


def le_bound(le: str | None) -> float | None:
    """A histogram bucket's upper bound, or None when `le` is missing or no number."""
    try:
        bound = float(le or "nan")
    except ValueError:
        return None
    return None if math.isnan(bound) else bound


def pod_counters(
    requests: Samples, buckets: Samples, guard: RolloutGuard | None = None
) -> dict[str, PodCounters]:
    """Per pod, from the two answers; a pod with no request series is left out (unknown),
    and a sample without a value or a usable `le` is skipped."""
    guard = guard or RolloutGuard()
    totals: dict[str, list[float]] = {}
    tenants: dict[str, dict[str, tuple[float, float]]] = {}
    for sample in requests:
        pod, counted = sample.labels.get(POD), requested(sample, guard)
        if not pod or counted is None:
            continue
        value, failed, tenant = counted
        total = totals.setdefault(pod, [0.0, 0.0])
        total[0] += value
        total[1] += failed
        if tenant:
            was = tenants.setdefault(pod, {}).get(tenant, (0.0, 0.0))
            tenants[pod][tenant] = (was[0] + value, was[1] + failed)
    cumulative: dict[str, dict[float, float]] = {}
    for sample in buckets:
        pod, count = sample.labels.get(POD), sample.reading.value
        le = le_bound(sample.labels.get("le"))
        if pod in totals and count is not None and le is not None:
            cumulative.setdefault(pod, {})[le] = count
    return {
        pod: PodCounters(requests, errors, cumulative.get(pod, {}),
                         busiest(tenants.get(pod, {}), guard.tenants.max_tenants))
        for pod, (requests, errors) in totals.items()
    }  # fmt: skip


def from_prometheus(
    samples: Sequence[PodSample], found: Mapping[str, PodCounters]
) -> tuple[PodSample, ...]:
    """The direct reads, with every Ready pod that did not answer read from `found` instead
    (its health then unknown: it was not probed)."""
    out = []
    for sample in samples:
        counters = found.get(sample.name)
        if sample.reachable or not sample.ready or counters is None:
            out.append(sample)
            continue
        out.append(replace(
            sample, reachable=True, health_ok=None, source=GuardSource.PROMETHEUS,
            requests=counters.requests, errors=counters.errors, buckets=dict(counters.buckets),
            tenants=dict(counters.tenants),
        ))  # fmt: skip
    return tuple(out)


async def ask_pair(
    query: Query, url: str, queries: tuple[str, str], what: tuple[str, str]
) -> tuple[Samples, Samples] | str:
    """Both queries at once; either failing is the reason for both (requests without their
    buckets would read as a histogram reset)."""
    first, second = await asyncio.gather(query(url, queries[0], what[0]),
                                         query(url, queries[1], what[1]))  # fmt: skip
    if isinstance(first, str):
        return first
    if isinstance(second, str):
        return second
    return first, second


async def read_pod_series(
    query: Query, url: str, queries: tuple[str, str], guard: RolloutGuard | None = None
) -> dict[str, PodCounters] | str:
    """The pods' counters, or why there are none this read."""
    answers = await ask_pair(query, url, queries,
                             ("query pod requests", "query pod latency buckets"))  # fmt: skip
    return answers if isinstance(answers, str) else pod_counters(*answers, guard)
