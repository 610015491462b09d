"""Prometheus readings for many services with a few queries per cycle.

Services that share a Prometheus, a set of selector label keys and a rate
window form one batch: each default metric is one query for the whole batch,
grouped `by` those keys, and the answer is split per service client-side.
Only per-service PromQL overrides cost a query each. prometheus-api-client is
synchronous, so queries run in threads, a few at a time.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import structlog
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from venue_operator.observations import MetricReadings, Reading
from venue_operator.redact import redact
from venue_operator.telemetry import PROMETHEUS_QUERIES

log = structlog.get_logger(__name__)

RATE = "rate(http_requests_total{{{sel}}}[{w}])"
_SHARE = (
    "(sum by ({by}) (rate(http_requests_total{{{sel},status_code{match}}}[{w}]))"
    " or sum by ({by}) (" + RATE + ") * 0)"
    " / sum by ({by}) (" + RATE + ")"
)
# metric -> PromQL template; {sel} label matchers, {by} grouping keys, {w} rate window.
TEMPLATES: dict[str, str] = {
    "request_rate": "sum by ({by}) (" + RATE + ")",
    "error_rate": _SHARE.replace("{match}", '=~"5.."'),
    "rate_limited": _SHARE.replace("{match}", '="429"'),
    "p99_latency": (
        "histogram_quantile(0.99, sum by ({by}, le) "
        "(rate(http_request_duration_seconds_bucket{{{sel}}}[{w}])))"
    ),
    "pool_utilisation": (
        "sum by ({by}) (db_pool_in_use{{{sel}}}) / sum by ({by}) (db_pool_size{{{sel}}})"
    ),
    "pool_pending": "sum by ({by}) (db_pool_pending{{{sel}}})",
    "memory_utilisation": (
        "sum by ({by}) (process_resident_memory_bytes{{{sel}}})"
        " / sum by ({by}) (venue_memory_limit_bytes{{{sel}}})"
    ),
}
TENANTS_TEMPLATE = "sum by ({by}, tenant) (rate(rate_limit_exceeded_total{{{sel}}}[{w}])) > 0"


@dataclass(frozen=True)
class Target:
    """One VenueService's metrics source, already resolved from its spec and defaults."""

    key: str  # namespace/name
    url: str | None
    labels: Mapping[str, str]
    window: str = "1m"
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def batch(self) -> tuple[str | None, tuple[str, ...], str]:
        return (self.url, tuple(sorted(self.labels)), self.window)


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _regex_string(values: Iterable[str]) -> str:
    escaped = []
    for value in sorted(set(values)):
        escaped.append("".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in value))
    return _string("|".join(escaped))


def selector(labels: Mapping[str, str]) -> str:
    """`k="v",...` for one service (what `$selector` expands to in overrides)."""
    return ",".join(f"{k}={_string(v)}" for k, v in sorted(labels.items()))


MAX_MATCHER_CHARS = 2000  # the query travels in a GET URL: keep it well under URL limits


def batch_selector(targets: Sequence[Target], keys: Sequence[str]) -> str:
    """One regex matcher per key; a key with too many values to list becomes `key!=""`
    (the answer is split per service client-side anyway)."""
    matchers = []
    for key in keys:
        regex = _regex_string(t.labels[key] for t in targets)
        matchers.append(f"{key}=~{regex}" if len(regex) <= MAX_MATCHER_CHARS else f'{key}!=""')
    return ",".join(matchers)


def _value(sample: Mapping[str, Any]) -> Reading:
    value = float(sample["value"][1])
    if math.isnan(value) or math.isinf(value):
        return Reading.unknown("query returned NaN" if math.isnan(value) else "query returned Inf")
    return Reading.of(value)


class PrometheusReader:
    """Reads every target's metrics; never raises: failures become unknown readings."""

    def __init__(self, timeout: float = 5.0, concurrency: int = 4) -> None:
        self.timeout = timeout
        self.queries = 0  # total queries sent, for metrics and benchmarks
        self._clients: dict[str, PrometheusConnect] = {}
        self._limit = asyncio.Semaphore(concurrency)

    def _client(self, url: str) -> PrometheusConnect:
        if url not in self._clients:
            self._clients[url] = PrometheusConnect(
                url=url, retry=Retry(total=0), timeout=self.timeout
            )
        return self._clients[url]

    async def _query(self, url: str, promql: str) -> list[dict[str, Any]] | str:
        """The result vector, or a one-line reason it could not be had."""
        self.queries += 1
        PROMETHEUS_QUERIES.inc()
        async with self._limit:
            try:
                result = await asyncio.to_thread(self._client(url).custom_query, promql)
            except Exception as exc:
                reason = redact(f"prometheus query failed: {type(exc).__name__}: {exc}")
                log.warning("prometheus.query_failed", reason=reason[:300])
                return reason[:500]
        return list(result)

    async def read(self, targets: Sequence[Target]) -> dict[str, MetricReadings]:
        """Metrics for every target, keyed by `Target.key`."""
        batches: dict[tuple[str | None, tuple[str, ...], str], list[Target]] = defaultdict(list)
        for target in targets:
            batches[target.batch].append(target)
        results = await asyncio.gather(*(self._read_batch(b) for b in batches.values()))
        return {key: readings for batch in results for key, readings in batch.items()}

    async def _read_batch(self, targets: list[Target]) -> dict[str, MetricReadings]:
        url, keys, window = targets[0].batch
        if url is None:
            missing = Reading.unknown(
                "no Prometheus URL: set spec.prometheus.url or --prometheus-url"
            )
            return {t.key: _all(missing) for t in targets}
        fill = {"sel": batch_selector(targets, keys), "by": ",".join(keys), "w": window}
        names = list(TEMPLATES)
        answers = await asyncio.gather(
            *(self._query(url, TEMPLATES[n].format(**fill)) for n in names),
            self._query(url, TENANTS_TEMPLATE.format(**fill)),
        )
        by_metric = dict(zip(names, answers[:-1], strict=True))
        out = {t.key: _split(t, keys, by_metric, answers[-1]) for t in targets}
        overridden = [t for t in targets if t.overrides]
        for target in overridden:
            out[target.key] = await self._apply_overrides(url, target, out[target.key])
        return out

    async def _apply_overrides(
        self, url: str, target: Target, readings: MetricReadings
    ) -> MetricReadings:
        changes: dict[str, Reading] = {}
        for metric, template in target.overrides.items():
            promql = template.replace("$selector", selector(target.labels))
            answer = await self._query(url, promql)
            if isinstance(answer, str):
                changes[metric] = Reading.unknown(answer)
            elif len(answer) != 1:
                changes[metric] = Reading.unknown(
                    f"override for {metric} returned {len(answer)} series"
                )
            else:
                changes[metric] = _value(answer[0])
        return replace(readings, **cast(dict[str, Any], changes))


def _all(reading: Reading) -> MetricReadings:
    everything: dict[str, Any] = dict.fromkeys(TEMPLATES, reading)
    return MetricReadings(**everything)


def _split(
    target: Target,
    keys: Sequence[str],
    by_metric: Mapping[str, list[dict[str, Any]] | str],
    tenants: list[dict[str, Any]] | str,
) -> MetricReadings:
    wanted = tuple(target.labels[k] for k in keys)

    def pick(answer: list[dict[str, Any]] | str) -> Reading:
        if isinstance(answer, str):
            return Reading.unknown(answer)
        for sample in answer:
            if tuple(sample["metric"].get(k, "") for k in keys) == wanted:
                return _value(sample)
        return Reading.unknown(f"no series for {{{selector(target.labels)}}}")

    top: list[tuple[str, float]] = []
    if not isinstance(tenants, str):
        for sample in tenants:
            if tuple(sample["metric"].get(k, "") for k in keys) == wanted:
                top.append((sample["metric"].get("tenant", "?"), float(sample["value"][1])))
    top.sort(key=lambda item: -item[1])
    picked: dict[str, Any] = {name: pick(answer) for name, answer in by_metric.items()}
    return MetricReadings(**picked, top_limited_tenants=tuple(top[:5]))
