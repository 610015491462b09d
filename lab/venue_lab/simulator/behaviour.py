"""A simulated service's observable behaviour: synthetic traffic, health answers, metrics text.

Pure state, no I/O: time comes in as `now` (seconds, any monotonic origin), randomness
from a per-service seeded `random.Random`, so a run is reproducible from its seed.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import statistics
from dataclasses import dataclass

from venue_lab.simulator.faults import HEALTHY, Faults, tenant_weights

ROUTES = ("/api/v1/venues", "/api/v1/venues/:id")
TENANTS = ("tenant-a", "tenant-b", "tenant-c", "tenant-d", "tenant-e")
STATUS_CODES = ("200", "429", "500", "503")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)

# Healthy baseline, tuned against the runbook's warning thresholds: 0.1% errors (< 1%),
# histogram P99 ~0.17 s (< 0.5 s), pool ~30% (< 70%), memory ~40% (< 70%).
BASELINE_ERROR_RATIO = 0.001
MEDIAN_LATENCY_S = 0.035
LATENCY_SIGMA = 0.5
POOL_SIZE = 20
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024

# Faults: a dead database fails nearly everything fast; a dead Redis only what needs it;
# a saturated pool makes requests queue for a connection (P99 ~1 s).
DATABASE_DOWN_ERROR_RATIO = 0.95
REDIS_DOWN_ERROR_RATIO = 0.02
POOL_WAIT_MEAN_S = 0.2
FAST_FAILURE_FACTOR = 0.1
SURGE_FACTOR = 1.0  # the abusive tenant's extra traffic, relative to the service's rate
SURGE_REJECTED_RATIO = 0.9
# `error_bursts`: 1 s of every 10 s at 6% 5xx (over the 5% critical limit), the rest at the
# fault's own ratio; each service bursts at its own phase.
BURST_ERROR_RATIO = 0.06
BURST_PERIOD_S, BURST_S = 10.0, 1.0
WARM_UP_ADDED_S = 2.5

# Bounds the work of one catch-up (e.g. after an hour unscraped); beyond it, samples weigh more.
MAX_SAMPLES_PER_ADVANCE = 20_000

# A healthy request's chance of each latency bucket (the last: +Inf) and its mean latency:
# what `fluid` traffic adds per request instead of drawing each one.
_LATENCY = statistics.NormalDist(math.log(MEDIAN_LATENCY_S), LATENCY_SIGMA)
_AT_MOST = [_LATENCY.cdf(math.log(bound)) for bound in BUCKETS] + [1.0]
HEALTHY_BUCKET_SHARES = tuple(b - a for a, b in zip([0.0, *_AT_MOST[:-1]], _AT_MOST, strict=True))
HEALTHY_MEAN_LATENCY_S = MEDIAN_LATENCY_S * math.exp(LATENCY_SIGMA**2 / 2)

MALFORMED_BODY = '{"status": "ok", "checks": {'
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Health:
    """An HTTP answer to a health probe."""

    status: int
    body: str
    content_type: str = JSON_TYPE

    @classmethod
    def of(cls, status: int, payload: dict[str, object]) -> Health:
        return cls(status, json.dumps(payload))


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


class ServiceBehaviour:
    """Counters that advance lazily with elapsed time, shaped by the current faults.

    `fluid`: while the service has no faults, its counters grow by the expected share of each
    series (no draws, no noise), so that thousands of services cost the lab little; any fault
    and they are drawn request by request again."""

    def __init__(
        self,
        rate: float,
        seed: str | int,
        now: float,
        faults: Faults = HEALTHY,
        *,
        fluid: bool = False,
    ) -> None:
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
        self.rate = rate
        self.fluid = fluid
        self._random = random.Random(seed)
        self._faults = HEALTHY
        # set_faults's (below): the tenants, and their weights summed in turn
        self._tenants: list[str] = []
        self._tenant_cum: list[float] = []
        self._error_weight: dict[str, float] = {}
        self._born = now
        self._burst_phase = self._random.uniform(0, BURST_PERIOD_S)
        self._last = now
        self._carry = 0.0
        self._surge_carry = 0.0
        self.requests = {
            (route, code, tenant): 0.0
            for route in ROUTES
            for code in STATUS_CODES
            for tenant in TENANTS
        }
        self.rate_limited = dict.fromkeys(TENANTS, 0.0)
        self.buckets = {route: [0.0] * (len(BUCKETS) + 1) for route in ROUTES}
        self.latency_sum = dict.fromkeys(ROUTES, 0.0)
        self.set_faults(faults, now)

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults, now: float) -> None:
        """Traffic up to `now` is served with the old faults, after it with the new."""
        self.advance(now)
        self._faults = faults
        traffic = tenant_weights(faults.tenant_traffic) or dict.fromkeys(TENANTS, 1.0)
        # the weights summed once, as random.choices sums them at every call: the same draws
        self._tenants, self._tenant_cum = (
            list(traffic),
            list(itertools.accumulate(traffic.values())),
        )
        self._error_weight = tenant_weights(faults.tenant_error_weight)

    def advance(self, now: float) -> None:
        """Serve the synthetic requests that arrived since the last call."""
        start = self._last
        elapsed, self._last = now - self._last, max(now, self._last)
        if elapsed <= 0 or self._faults.not_starting:
            return  # a service that does not start serves nothing
        if self.fluid and self._faults == HEALTHY:
            self._flow(elapsed * self.rate)
            return
        self._carry += elapsed * self.rate
        served, self._carry = divmod(self._carry, 1.0)
        self._serve(int(served), None, start, elapsed)
        tenant = self._faults.rate_limit_tenant
        if tenant is not None:
            self._surge_carry += elapsed * self.rate * SURGE_FACTOR
            surged, self._surge_carry = divmod(self._surge_carry, 1.0)
            self._serve(int(surged), tenant, start, elapsed)

    def _flow(self, count: float) -> None:
        """`count` healthy requests, each series grown by its expected share of them."""
        per_route = count / len(ROUTES)
        each = per_route / len(TENANTS)
        failed, served = each * BASELINE_ERROR_RATIO, each * (1 - BASELINE_ERROR_RATIO)
        requests = self.requests
        for route in ROUTES:
            for tenant in TENANTS:
                requests[(route, "500", tenant)] += failed
                requests[(route, "200", tenant)] += served
            buckets = self.buckets[route]
            for i, share in enumerate(HEALTHY_BUCKET_SHARES):
                buckets[i] += per_route * share
            self.latency_sum[route] += per_route * HEALTHY_MEAN_LATENCY_S

    def _serve(self, count: int, surge_tenant: str | None, start: float, elapsed: float) -> None:
        """`count` requests spread evenly over `elapsed` seconds from `start`."""
        if count <= 0:
            return
        samples = min(count, MAX_SAMPLES_PER_ADVANCE)
        weight = count / samples
        rng = self._random
        cum, last = self._tenant_cum, len(self._tenant_cum) - 1
        total = cum[-1] + 0.0
        for i in range(samples):
            at = start + elapsed * (i + 0.5) / samples
            route = rng.choice(ROUTES)
            tenant = (
                surge_tenant or self._tenants[bisect.bisect(cum, rng.random() * total, 0, last)]
            )
            code = self._status(surge=surge_tenant is not None, tenant=tenant, at=at)
            latency = self._latency(fast=code in ("429", "503"), at=at)
            key = (route, code, tenant)
            self.requests[key] = self.requests.get(key, 0.0) + weight
            if code == "429":
                self.rate_limited[tenant] = self.rate_limited.get(tenant, 0.0) + weight
            self.buckets[route][bisect.bisect_left(BUCKETS, latency)] += weight
            self.latency_sum[route] += latency * weight

    def _status(self, surge: bool, tenant: str, at: float) -> str:
        faults, rng = self._faults, self._random
        if surge:
            return "429" if rng.random() < SURGE_REJECTED_RATIO else "200"
        if faults.database_down and rng.random() < DATABASE_DOWN_ERROR_RATIO:
            return "503"
        bursting = faults.error_bursts and (at + self._burst_phase) % BURST_PERIOD_S < BURST_S
        error_ratio = max(
            BASELINE_ERROR_RATIO,
            BURST_ERROR_RATIO if bursting else faults.error_ratio,
            REDIS_DOWN_ERROR_RATIO if faults.redis_down else 0.0,
        )
        error_ratio = min(1.0, error_ratio * self._error_weight.get(tenant, 1.0))
        return "500" if rng.random() < error_ratio else "200"

    def _latency(self, fast: bool, at: float) -> float:
        faults, rng = self._faults, self._random
        latency = rng.lognormvariate(math.log(MEDIAN_LATENCY_S), LATENCY_SIGMA)
        if fast:
            return latency * FAST_FAILURE_FACTOR
        if faults.pool_saturation:
            latency += rng.expovariate(1 / POOL_WAIT_MEAN_S)
        if at - self._born < faults.warm_up_slow_s:
            latency += WARM_UP_ADDED_S
        return latency + faults.added_latency_ms / 1000

    def health(self) -> Health:
        """`GET /health`: liveness plus readiness (database reachable, schema current)."""
        faults = self._faults
        if faults.malformed_health:
            return Health(200, MALFORMED_BODY)
        if faults.database_down:
            return Health.of(503, {"status": "error", "reason": "database unreachable"})
        if faults.migrations_pending:
            return Health.of(503, {"status": "error", "reason": "migrations pending"})
        return Health.of(200, {"status": "ok"})

    def full_health(self) -> Health:
        """`GET /health/full`: the runbook's shape, one check per dependency."""
        faults = self._faults
        if faults.malformed_health:
            return Health(200, MALFORMED_BODY)
        checks = {
            "database": "error" if faults.database_down else "ok",
            "redis": "error" if faults.redis_down else "ok",
        }
        if faults.migrations_pending:
            checks["migrations"] = "pending"
        healthy = all(value == "ok" for value in checks.values())
        return Health.of(
            200 if healthy else 503, {"status": "ok" if healthy else "error", "checks": checks}
        )

    def gauges(self) -> dict[str, float]:
        """Point-in-time values (with a little jitter), sampled at scrape time."""
        faults, rng = self._faults, self._random
        if faults.database_down:
            in_use, pending = 0, rng.randint(5, 15)
        elif faults.pool_saturation:
            in_use, pending = POOL_SIZE, rng.randint(3, 12)
        else:
            in_use, pending = rng.randint(4, 8), 0
        memory = rng.uniform(0.88, 0.93) if faults.memory_pressure else rng.uniform(0.38, 0.42)
        return {
            "db_pool_size": POOL_SIZE,
            "db_pool_in_use": in_use,
            "db_pool_pending": pending,
            "process_resident_memory_bytes": int(memory * MEMORY_LIMIT_BYTES),
            "venue_memory_limit_bytes": MEMORY_LIMIT_BYTES,
            "venue_migrations_pending": 1 if faults.migrations_pending else 0,
        }

    def metrics_text(self, now: float, labels: str = "") -> str:
        """Prometheus text exposition (format 0.0.4) after catching up to `now`. `labels`
        (e.g. `service="venue-001"`) goes on every sample, and then no HELP/TYPE lines: the
        fleet's exposition interleaves every service's families (control.py)."""
        self.advance(now)
        extra = f"{labels}," if labels else ""
        lines = [
            "# HELP http_requests_total HTTP requests served.",
            "# TYPE http_requests_total counter",
        ]
        for (route, code, tenant), value in self.requests.items():
            lines.append(
                f'http_requests_total{{{extra}route="{route}",status_code="{code}",'
                f'tenant="{tenant}"}} {_number(value)}'
            )
        lines += self._histogram_lines(extra)
        lines += [
            "# HELP rate_limit_exceeded_total Requests rejected by the rate limiter.",
            "# TYPE rate_limit_exceeded_total counter",
        ]
        for tenant, value in self.rate_limited.items():
            lines.append(f'rate_limit_exceeded_total{{{extra}tenant="{tenant}"}} {_number(value)}')
        bare = f"{{{labels}}}" if labels else ""
        for name, value in self.gauges().items():
            lines += [f"# TYPE {name} gauge", f"{name}{bare} {_number(float(value))}"]
        if labels:
            lines = [line for line in lines if not line.startswith("#")]
        return "\n".join(lines) + "\n"

    def _histogram_lines(self, extra: str) -> list[str]:
        name = "http_request_duration_seconds"
        lines = [f"# HELP {name} HTTP request latency.", f"# TYPE {name} histogram"]
        for route, counts in self.buckets.items():
            cumulative = 0.0
            head = f'{extra}route="{route}"'
            for bound, count in zip((*BUCKETS, math.inf), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == math.inf else repr(bound)
                lines.append(f'{name}_bucket{{{head},le="{le}"}} {_number(cumulative)}')
            lines.append(f"{name}_sum{{{head}}} {_number(self.latency_sum[route])}")
            lines.append(f"{name}_count{{{head}}} {_number(cumulative)}")
        return lines
