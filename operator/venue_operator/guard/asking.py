"""What the rollout guard asks Prometheus, within the VenueService's boundaries: each unread
pod's counters (guard/pod_series.py), which label is missing when it has none, and the old
version's baseline (guard/baseline.py). One place decides which Prometheus and which series
a spec may read (observe/metrics_source.py: its own namespace, an allowed URL)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from venue_operator.guard.baseline import baseline_queries, read_baseline
from venue_operator.guard.pod_series import (
    PodCounters,
    Query,
    missing_labels,
    pod_queries,
    read_pod_series,
)
from venue_operator.guard.tally import VersionTally
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.observe.metrics_source import metrics_target
from venue_operator.tenancy.policy import Tenancy
from venue_operator.tenancy.promql_scope import Refused

NO_URL = "no Prometheus URL: set spec.prometheus.url or --prometheus-url"


@dataclass(frozen=True)
class GuardPrometheus:
    """The reader, URL and selector labels of one VenueService's Prometheus, or why none
    (`refused`): every question then answers with that reason."""

    namespace: str
    query: Query | None = None
    url: str = ""
    labels: Mapping[str, str] | None = None
    refused: str = ""

    @classmethod
    def of(
        cls, spec: VenueServiceSpec, namespace: str, name: str, query: Query | None,
        fallback_url: str | None, tenancy: Tenancy,
    ) -> GuardPrometheus:  # fmt: skip
        if query is None:
            return cls(namespace, refused="no Prometheus reader")
        admitted = metrics_target(spec, namespace, name, fallback_url, tenancy)
        if admitted.refused is not None:
            return cls(namespace, refused=admitted.refused)
        if admitted.target.url is None:
            return cls(namespace, refused=NO_URL)
        return cls(namespace, query, admitted.target.url, dict(admitted.target.labels))

    async def pod_counters(
        self, guard: RolloutGuard, pods: list[str]
    ) -> dict[str, PodCounters] | str:
        """The pods' counters from their series labelled by `pod`, or why not."""
        if self.query is None or self.labels is None:
            return self.refused
        queries = pod_queries(self.labels, self.namespace, pods, guard)
        if isinstance(queries, Refused):
            return f"pod query refused: {queries.reason}"
        return await read_pod_series(self.query, self.url, queries, guard)

    async def missing_labels(self) -> str:
        if self.query is None or self.labels is None:
            return self.refused
        return await missing_labels(self.query, self.url, self.labels, self.namespace)

    async def baseline(self, guard: RolloutGuard, changed_at: datetime) -> VersionTally | str:
        """The old version over `baselineWindow` before `changed_at`, or why not."""
        if self.query is None or self.labels is None:
            return self.refused
        queries = baseline_queries(dict(self.labels), self.namespace, guard, changed_at)
        if isinstance(queries, Refused):
            return f"baseline query refused: {queries.reason}"
        return await read_baseline(self.query, self.url, queries, guard)
