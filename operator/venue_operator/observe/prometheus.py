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

from venue_operator.observations import NO_SERIES, MetricReadings, Reading
from venue_operator.redact import redact
from venue_operator.telemetry import PROMETHEUS_QUERIES

log = structlog.get_logger(__name__)

RATE = "sum by ({by}) (rate(http_requests_total{{{sel}%s}}[{w}]))"
# metric -> PromQL template; {sel} label matchers, {by} grouping keys, {w} rate window.
TEMPLATES: dict[str, str] = {
    "request_rate": RATE % "",
    # Shares are divided client-side by request_rate: a ratio computed in PromQL costs three
    # rate() passes over every series (at 1,000 services it outlasted the query timeout).
    "error_rate": RATE % ',status_code=~"5.."',
    "rate_limited": RATE % ',status_code="429"',
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
SHARES = ("error_rate", "rate_limited")  # batch answers are req/s; readings are shares
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

    def __init__(self, timeout: float = 10.0, concurrency: int = 4) -> None:
        self.timeout = timeout
        self.queries = 0  # total queries sent, for metrics and benchmarks
        self._clients: dict[str, PrometheusConnect] = {}
        self._limit = asyncio.Semaphore(concurrency)

    def _client(self, url: str) -> PrometheusConnect:
        if url not in self._clients:
            # read=False: a read timeout surfaces as requests' ReadTimeout ("Read timed out"),
            # not as a ConnectionError saying "Max retries exceeded".
            self._clients[url] = PrometheusConnect(
                url=url, retry=Retry(total=0, read=False), timeout=self.timeout
            )
        return self._clients[url]

    async def _query(self, url: str, promql: str) -> list[dict[str, Any]] | str:
        """The result vector, or a one-line reason it could not be had. Evaluated at
        Prometheus' "now": our own clock may be skewed from its (a share's two queries are
        a second apart at most, against a rate window of a minute)."""
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
        out = split(targets, keys, dict(zip(names, answers[:-1], strict=True)), answers[-1])
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


Answer = list[dict[str, Any]] | str  # a result vector, or why there is none
Series = dict[tuple[str, ...], dict[str, Any]]


def split(
    targets: Sequence[Target], keys: Sequence[str], by_metric: Mapping[str, Answer], tenants: Answer
) -> dict[str, MetricReadings]:
    """Each service's readings out of the batch answers (grouped by `keys`)."""
    indexed = {name: _by_service(answer, keys) for name, answer in by_metric.items()}
    by_tenant = _tenants_by_service(tenants, keys)
    return {t.key: _pick(t, keys, indexed, by_tenant) for t in targets}


def _by_service(answer: Answer, keys: Sequence[str]) -> Series | str:
    """A batch answer indexed by its grouping labels: splitting it is then one lookup per
    service, not a scan (at 1,000 services a scan per service was most of the CPU)."""
    if isinstance(answer, str):
        return answer
    return {_group(s, keys): s for s in answer}


def _group(sample: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    return tuple(sample["metric"].get(k, "") for k in keys)


def _tenants_by_service(
    answer: Answer, keys: Sequence[str]
) -> dict[tuple[str, ...], list[tuple[str, float]]]:
    out: dict[tuple[str, ...], list[tuple[str, float]]] = defaultdict(list)
    if not isinstance(answer, str):
        for s in answer:
            tenant = (s["metric"].get("tenant", "?"), float(s["value"][1]))
            out[_group(s, keys)].append(tenant)
    return out


def _share(
    answer: Series | str, wanted: tuple[str, ...], requests: Reading, part: Reading
) -> Reading:
    """part / requests. No series for the part, while requests have one, is 0 (a counter
    with that status code never incremented)."""
    if isinstance(answer, str):
        return part
    if requests.value is None:
        return requests
    if requests.value == 0:
        return Reading.unknown("no requests in the rate window")
    counted = 0.0 if wanted not in answer else part.value
    if counted is None:
        return part
    return Reading.of(counted / requests.value)


def _pick(
    target: Target,
    keys: Sequence[str],
    by_metric: Mapping[str, Series | str],
    tenants: Mapping[tuple[str, ...], list[tuple[str, float]]],
) -> MetricReadings:
    wanted = tuple(target.labels[k] for k in keys)

    def pick(answer: Series | str) -> Reading:
        if isinstance(answer, str):
            return Reading.unknown(answer)
        sample = answer.get(wanted)
        if sample is None:
            return Reading.unknown(f"{NO_SERIES} {{{selector(target.labels)}}}")
        return _value(sample)

    picked: dict[str, Any] = {name: pick(answer) for name, answer in by_metric.items()}
    for name in SHARES:
        picked[name] = _share(by_metric[name], wanted, picked["request_rate"], picked[name])
    top = sorted(tenants.get(wanted, []), key=lambda item: -item[1])
    return MetricReadings(**picked, top_limited_tenants=tuple(top[:5]))
