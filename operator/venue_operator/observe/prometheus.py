"""Prometheus readings for many services with a few queries per cycle.

Services that share a Prometheus, a set of selector label keys and a rate
window form one batch: each default metric is one query for the whole batch,
grouped `by` those keys, and the answer is split per service client-side.
Only per-service PromQL overrides cost a query each, run concurrently. Every query
is bounded (observe/endpoints.py), every answer checked (observe/answers.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import structlog

from venue_operator.model.observations import NO_SERIES, MetricReadings, Reading, TenantRate
from venue_operator.model.spec import SHARE_OVERRIDES
from venue_operator.observe.answers import Sample, Samples, instant
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import GRACE, Endpoints, Limits
from venue_operator.record.telemetry import PROMETHEUS_QUERIES
from venue_operator.tenancy.redact import one_line, redact

log = structlog.get_logger(__name__)

RATE = "sum by ({by}) (rate(http_requests_total{{{sel}%s}}[{w}]))"
# metric -> PromQL template; {sel} label matchers, {by} grouping keys, {w} rate window.
TEMPLATES: dict[str, str] = {
    "request_rate": RATE % "",
    # Instant: any series once a request was ever served (idle, or a rate not yet): `_served`.
    "requests_served": "sum by ({by}) (http_requests_total{{{sel}}})",
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
SERVED = "requests_served"
# The three rates of http_requests_total in one pass, by status code, split here (5xx, 429):
# a `label_replace` to a class in PromQL cost Prometheus 0.36-0.94 CPU-s to this one's 0.23.
BY_CLASS = ("request_rate", "error_rate", "rate_limited")
CODE = "status_code"
CODES_TEMPLATE = f"sum by ({{by}}, {CODE}) (rate(http_requests_total{{{{{{sel}}}}}}[{{w}}]))"
SERVER_ERROR = re.compile("5..")  # the error_rate template's status_code=~"5.." (anchored)
TENANTS_TEMPLATE = "sum by ({by}, tenant) (rate(rate_limit_exceeded_total{{{sel}}}[{w}])) > 0"
# Per-tenant traffic for an incident's impact, only for services in (or near) an incident;
# topk keeps a service with thousands of tenants from filling the answer. More are read than
# model.IMPACT_TENANTS names: a tenant's failed requests add up over the incident's cycles.
TENANTS_READ = 20
TENANT_REQUESTS = (
    "topk by ({by}) (%d, sum by ({by}, tenant) (rate(http_requests_total{{{sel}%s}}[{w}])))"
)
TENANT_TEMPLATES = {
    "requests": TENANT_REQUESTS % (TENANTS_READ * 2, ""),
    "failing": TENANT_REQUESTS % (TENANTS_READ, ',status_code=~"5.."'),
}


@dataclass(frozen=True)
class Target:
    """One VenueService's metrics source, already resolved from its spec and defaults."""

    key: str  # namespace/name
    url: str | None
    labels: Mapping[str, str]
    window: str = "1m"
    overrides: Mapping[str, str] = field(default_factory=dict)
    impact: bool = False  # read its tenants' traffic too (an incident is open or near)

    @property
    def batch(self) -> tuple[str | None, tuple[str, ...], str]:
        return (self.url, tuple(sorted(self.labels)), self.window)


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_string(values: Iterable[str]) -> str:
    """A quoted regex matching exactly `values` (for `label=~...`)."""
    escaped = []
    for value in sorted(set(values)):
        escaped.append("".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in value))
    return _string("|".join(escaped))


def selector(labels: Mapping[str, str]) -> str:
    """`k="v",...` for one service (what `$selector` expands to in overrides)."""
    return ",".join(f"{k}={_string(v)}" for k, v in sorted(labels.items()))


# Beyond this many characters a matcher is `key!=""`: every series, split per service here.
# A long query is sent as a POST form (observe/bounded_session.py); Prometheus looks a regex
# of plain alternatives up as a set of values (a shard's 1,250 services: ~25 KB).
MAX_MATCHER_CHARS = 256 * 1024


def batch_selector(targets: Sequence[Target], keys: Sequence[str]) -> str:
    """One regex matcher per key; a key with too many values to list becomes `key!=""`
    (the answer is split per service client-side anyway)."""
    matchers = []
    for key in keys:
        regex = regex_string(t.labels[key] for t in targets)
        matchers.append(f"{key}=~{regex}" if len(regex) <= MAX_MATCHER_CHARS else f'{key}!=""')
    return ",".join(matchers)


REASON_CHARS = 300  # a reading's reason ends up in a status field of at most 1,024


def camel(metric: str) -> str:
    """`error_rate` -> `errorRate`: overrides are named as in the spec."""
    first, *rest = metric.split("_")
    return first + "".join(word.title() for word in rest)


class PrometheusReader:
    """Reads every target's metrics; never raises: each failure becomes unknown readings
    for the target or batch it belongs to, never for another."""

    def __init__(
        self,
        timeout: float = 10.0,
        concurrency: int = 4,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        auth: PrometheusAuth | None = None,
        auth_url: str | None = None,
    ) -> None:
        self.limits = limits or Limits(timeout=timeout, concurrency=concurrency)
        self.timeout = self.limits.timeout
        self.queries = 0  # total queries sent, for metrics and benchmarks
        self.endpoints = Endpoints(self.limits, clock, auth=auth, auth_url=auth_url)

    @property
    def longest_read(self) -> float:
        """Seconds a `read` can take: a query waits for a slot, then for its answer."""
        return 2 * (self.timeout + GRACE)

    def close(self) -> None:
        """Drop every client and its threads (queries still running end on their own)."""
        self.endpoints.close()

    async def query(self, url: str, promql: str, what: str) -> Samples | str:
        """One instant query for a caller of its own (the rollout guard's fallback): the
        same bounds, auth and accounting as the batches."""
        return await self._ask(url, promql, what)

    async def _ask(
        self, url: str, promql: str, what: str, scalar_ok: bool = False
    ) -> Samples | str:
        """The instant vector `promql` evaluates to, or a one-line reason there is none.
        Evaluated at Prometheus' "now": our own clock may be skewed from its (a share's two
        queries are a second apart at most, against a rate window of a minute)."""
        self.queries += 1
        PROMETHEUS_QUERIES.inc()
        answer = await self.endpoints.query(url, promql)
        if isinstance(answer, str):
            reason = one_line(f"prometheus query failed: {answer}", REASON_CHARS)
            log.warning("prometheus.query_failed", reason=reason)
            return reason
        return instant(answer, what, scalar_ok)

    async def read(self, targets: Sequence[Target]) -> dict[str, MetricReadings]:
        """Metrics for every target, keyed by `Target.key`; batches are read concurrently."""
        batches: dict[tuple[str | None, tuple[str, ...], str], list[Target]] = defaultdict(list)
        for target in targets:
            batches[target.batch].append(target)
        results = await asyncio.gather(*(self._read_isolated(b) for b in batches.values()))
        return {key: readings for batch in results for key, readings in batch.items()}

    async def _read_isolated(self, targets: list[Target]) -> dict[str, MetricReadings]:
        try:
            return await self._read_batch(targets)
        except Exception as exc:  # a bug here must cost this batch only, not every service
            log.exception("prometheus.batch_failed", url=redact(str(targets[0].url)))
            failed = Reading.unknown(f"metrics batch failed: {type(exc).__name__}")
            return {t.key: _all(failed) for t in targets}

    async def _read_batch(self, targets: list[Target]) -> dict[str, MetricReadings]:
        url, keys, window = targets[0].batch
        if url is None:
            missing = "no Prometheus URL: set spec.prometheus.url or --prometheus-url"
            return {t.key: _all(Reading.unknown(missing)) for t in targets}
        fill = {"sel": batch_selector(targets, keys), "by": ",".join(keys), "w": window}
        names = [n for n in TEMPLATES if n not in (*BY_CLASS, SERVED)]
        overrides = [(t, metric, q) for t in targets for metric, q in t.overrides.items()]
        answers = await asyncio.gather(
            *(self._ask(url, TEMPLATES[n].format(**fill), f"query {n}") for n in names),
            self._ask(url, CODES_TEMPLATE.format(**fill), "query request rates"),
            self._ask(url, TENANTS_TEMPLATE.format(**fill), "query top tenants"),
            *(self._override(url, t, metric, q) for t, metric, q in overrides),
        )
        batch = dict(zip(names, cast(list[Samples | str], answers[: len(names)]), strict=True))
        batch |= by_class(cast(Samples | str, answers[len(names)]), keys)
        if isinstance(batch["request_rate"], str):  # unread: so is whether any was served
            batch[SERVED] = batch["request_rate"]
        out = split(targets, keys, batch, cast(Samples | str, answers[len(names) + 1]))
        out = await self._served(url, targets, keys, out)
        out = await self._tenant_traffic(url, [t for t in targets if t.impact], keys, window, out)
        changes: dict[str, dict[str, Reading]] = defaultdict(dict)
        for (target, metric, _), reading in zip(overrides, answers[len(names) + 2 :], strict=True):
            changes[target.key][metric] = cast(Reading, reading)
        for key, changed in changes.items():
            out[key] = replace(out[key], **cast(dict[str, Any], changed))
        return out

    async def _served(self, url: str, targets: list[Target], keys: tuple[str, ...],
                      out: dict[str, MetricReadings]) -> dict[str, MetricReadings]:  # fmt: skip
        """`requests_served` for the services with no request rate series only (one query)."""
        targets = [t for t in targets if out[t.key].request_rate.no_series]
        if targets:
            fill = {"sel": batch_selector(targets, keys), "by": ",".join(keys)}
            answer = await self._ask(url, TEMPLATES[SERVED].format(**fill), f"query {SERVED}")
            served = _by_service(answer, keys)
            for t in targets:
                out[t.key] = replace(out[t.key], requests_served=_reading(served, t, keys))
        return out

    async def _tenant_traffic(
        self, url: str, targets: list[Target], keys: tuple[str, ...], window: str,
        out: dict[str, MetricReadings],
    ) -> dict[str, MetricReadings]:  # fmt: skip
        """Two more queries, for the services that asked for their tenants' traffic only."""
        if not targets:
            return out
        fill = {"sel": batch_selector(targets, keys), "by": ",".join(keys), "w": window}
        requests, failing = await asyncio.gather(
            *(self._ask(url, q.format(**fill), f"query tenant {n}")
              for n, q in TENANT_TEMPLATES.items())
        )  # fmt: skip
        by_requests, by_failing = _tenant_rates(requests, keys), _tenant_rates(failing, keys)
        for target in targets:
            wanted = tuple(target.labels.get(k, "") for k in keys)
            rates = dict(by_requests.get(wanted, []))
            tenants = tuple(
                TenantRate(tenant, rates.get(tenant), value)
                for tenant, value in sorted(by_failing.get(wanted, []), key=lambda i: -i[1])
            )
            out[target.key] = replace(out[target.key], tenants=tenants)
        return out

    async def _override(self, url: str, target: Target, metric: str, template: str) -> Reading:
        promql = template.replace("$selector", selector(target.labels))
        answer = await self._ask(url, promql, f"override {camel(metric)}", scalar_ok=True)
        return override_reading(metric, answer)


def override_reading(metric: str, answer: Samples | str) -> Reading:
    """An override's one series, in its metric's unit (model/spec.py): a share outside 0-1
    is not read (it would be shown x100 as a percent: an answer in percent, 100 times over)."""
    name = f"override {camel(metric)}"
    if isinstance(answer, str):
        return Reading.unknown(answer)
    if len(answer) != 1:
        return Reading.unknown(f"{name} returned {len(answer)} series; it must return one")
    value = answer[0].reading.value
    if metric in SHARE_OVERRIDES and value is not None and not 0 <= value <= 1:
        return Reading.unknown(f"{name} returned {value:g}; it must be a ratio from 0 to 1, "
                               "shown as a percent (0.05 is 5 %)")  # fmt: skip
    return answer[0].reading


def _all(reading: Reading) -> MetricReadings:
    everything: dict[str, Any] = dict.fromkeys(TEMPLATES, reading)
    return MetricReadings(**everything)


Series = dict[tuple[str, ...], Reading]


def by_class(answer: Samples | str, keys: Sequence[str]) -> dict[str, Samples | str]:
    """The request, 5xx and 429 rates per service out of one answer by status code (a
    service with no 5xx or 429 series has none in that metric's, as its own query gave)."""
    if isinstance(answer, str):
        return dict.fromkeys(BY_CLASS, answer)
    sums: dict[str, dict[tuple[str, ...], Reading]] = {m: {} for m in BY_CLASS}
    for sample in answer:
        group, code = _group(sample, keys), sample.labels.get(CODE, "")
        kind = "error_rate" if SERVER_ERROR.fullmatch(code) else None
        for metric in ("request_rate", "rate_limited" if code == "429" else kind):
            if metric is not None:
                sums[metric][group] = _plus(sums[metric].get(group), sample.reading)
    return {metric: tuple(Sample(dict(zip(keys, group, strict=True)), reading)
                          for group, reading in found.items())
            for metric, found in sums.items()}  # fmt: skip


def _plus(total: Reading | None, reading: Reading) -> Reading:  # unknown once a part is
    if total is None or total.value is None:
        return reading if total is None else total
    return reading if reading.value is None else Reading.of(total.value + reading.value)


def split(
    targets: Sequence[Target],
    keys: Sequence[str],
    by_metric: Mapping[str, Samples | str],
    tenants: Samples | str,
) -> dict[str, MetricReadings]:
    """Each service's readings out of the batch answers (grouped by `keys`)."""
    indexed = {name: _by_service(answer, keys) for name, answer in by_metric.items()}
    by_tenant = _tenants_by_service(tenants, keys)
    return {t.key: _pick(t, keys, indexed, by_tenant) for t in targets}


def _by_service(answer: Samples | str, keys: Sequence[str]) -> Series | str:
    """A batch answer indexed by its grouping labels: splitting it is then one lookup per
    service, not a scan (at 1,000 services a scan per service was most of the CPU)."""
    if isinstance(answer, str):
        return answer
    return {_group(s, keys): s.reading for s in answer}


def _group(sample: Sample, keys: Sequence[str]) -> tuple[str, ...]:
    return tuple(sample.labels.get(k, "") for k in keys)


TENANT_CHARS = 64  # tenant names are label values, named in Events


def _tenants_by_service(
    answer: Samples | str, keys: Sequence[str]
) -> dict[tuple[str, ...], list[tuple[str, float]]]:
    out: dict[tuple[str, ...], list[tuple[str, float]]] = defaultdict(list)
    if not isinstance(answer, str):
        for s in answer:
            if s.reading.value is not None:
                tenant = one_line(s.labels.get("tenant", "?"), TENANT_CHARS)
                out[_group(s, keys)].append((tenant, s.reading.value))
    return out


def _tenant_rates(
    answer: Samples | str, keys: Sequence[str]
) -> dict[tuple[str, ...], list[tuple[str, float]]]:
    """Per service, (tenant, value) of a per-tenant answer; NaN and negatives dropped."""
    rates = _tenants_by_service(answer, keys)
    return {k: [(t, v) for t, v in items if v >= 0] for k, items in rates.items()}


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


def _reading(answer: Series | str, target: Target, keys: Sequence[str]) -> Reading:
    """The service's own reading out of an indexed batch answer."""
    if isinstance(answer, str):
        return Reading.unknown(answer)
    found = answer.get(tuple(target.labels.get(k, "") for k in keys))
    if found is None:  # assess tells "no series" apart by this prefix
        missing = f"{NO_SERIES} {{{selector(target.labels)}}}"
        return Reading.unknown(one_line(missing, REASON_CHARS))
    return found


def _pick(
    target: Target,
    keys: Sequence[str],
    by_metric: Mapping[str, Series | str],
    tenants: Mapping[tuple[str, ...], list[tuple[str, float]]],
) -> MetricReadings:
    wanted = tuple(target.labels.get(k, "") for k in keys)
    picked: dict[str, Any] = {name: _reading(answer, target, keys)
                              for name, answer in by_metric.items()}  # fmt: skip
    for name in SHARES:
        picked[name] = _share(by_metric[name], wanted, picked["request_rate"], picked[name])
    top = sorted(tenants.get(wanted, []), key=lambda item: -item[1])
    return MetricReadings(**picked, top_limited_tenants=tuple(top[:5]))
