"""A version's tally during a rollout: its requests, 5xx, latency buckets and tenants, since
the watch began, or over a window before it (the old version's baseline). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from venue_operator.guard import tenants as per_tenant
from venue_operator.guard.stats import quantile_from_buckets


@dataclass(frozen=True)
class VersionTally:
    """One version's requests since the watch began (latency only after each pod's warm-up)."""

    requests: float = 0.0
    errors: float = 0.0
    latency: Mapping[float, float] = field(default_factory=dict)  # le -> count (not cumulative)
    tenants: per_tenant.Counts = field(default_factory=dict)

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    def p99(self) -> float | None:
        running, cumulative = 0.0, []
        for le in sorted(self.latency):
            running += self.latency[le]
            cumulative.append((le, running))
        return quantile_from_buckets(0.99, cumulative)

    @property
    def latency_requests(self) -> float:
        return sum(self.latency.values())

    def plus(
        self, requests: float, errors: float, latency: Mapping[float, float],
        by_tenant: per_tenant.Counts, max_tenants: int,
    ) -> VersionTally:  # fmt: skip
        merged = dict(self.latency)
        for le, count in latency.items():
            merged[le] = merged.get(le, 0.0) + count
        return VersionTally(self.requests + requests, self.errors + errors, merged,
                            per_tenant.added(self.tenants, by_tenant, max_tenants))  # fmt: skip

    @classmethod
    def of_window(
        cls, requests: float, errors: float, cumulative: Mapping[float, float],
        by_tenant: per_tenant.Counts, max_tenants: int,
    ) -> VersionTally:  # fmt: skip
        """A tally from a window's increases, its buckets cumulative (as Prometheus has them)."""
        latency, below = {}, 0.0
        for le in sorted(cumulative):
            latency[le] = max(0.0, cumulative[le] - below)
            below = max(below, cumulative[le])
        return cls(requests, errors, latency, per_tenant.busiest(by_tenant, max_tenants))
