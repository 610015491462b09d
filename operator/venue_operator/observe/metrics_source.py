"""The VenueService's metrics source within the tenant boundaries: its own namespace's
series (the `namespace` label forced, in every override too), from an allowed Prometheus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from venue_operator.model.durations import format_duration
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.observe.prometheus import SHARES, TEMPLATES, Target, camel, selector
from venue_operator.tenancy.policy import Tenancy, labels_refusal, prometheus_url_refusal
from venue_operator.tenancy.promql_scope import Refused, scope


@dataclass(frozen=True)
class Admitted:
    """The metrics target within the tenant boundaries, and the overrides refused (metric ->
    reason); `refused` set: nothing of it may be queried."""

    target: Target
    overrides_refused: Mapping[str, str] = field(default_factory=dict)
    refused: str | None = None


def metrics_target(
    spec: VenueServiceSpec, namespace: str, name: str, fallback_url: str | None,
    tenancy: Tenancy | None = None,
) -> Admitted:  # fmt: skip
    """The VenueService's metrics source: its series are those of its own namespace (the
    `namespace` label is forced; every override's selectors too), from an allowed Prometheus."""
    tenancy = tenancy or Tenancy()
    labels = dict(spec.prometheus.match_labels) or {"service": spec.deployment.name}
    refused = labels_refusal(labels, namespace) or prometheus_url_refusal(
        spec.prometheus.url, fallback_url, tenancy
    )
    labels["namespace"] = namespace
    overrides: dict[str, str] = {}
    overrides_refused: dict[str, str] = {}
    for metric, query in spec.prometheus.queries.model_dump().items():
        if query is None or metric not in TEMPLATES:
            continue
        scoped = scope(query.replace("$selector", selector(labels)), namespace)
        if isinstance(scoped, Refused):
            overrides_refused[metric] = f"override {camel(metric)} refused: {scoped.reason}"
        else:
            overrides[metric] = scoped
    target = Target(
        key=f"{namespace}/{name}",
        url=spec.prometheus.url or fallback_url,
        labels=labels,
        window=format_duration(spec.prometheus.rate_window),
        overrides=overrides,
    )
    return Admitted(target, overrides_refused, refused)


def service_query(metric: str, target: Target) -> str:
    """The PromQL one service's `metric` reading comes from: its override, else the batch
    template for that service alone (a share over the request rate, 0 when no request
    failed, as `_share` divides it); for the post-mortem's range queries."""
    if metric in target.overrides:
        return target.overrides[metric]
    keys = sorted(target.labels)
    fill = {"sel": selector(target.labels), "by": ",".join(keys), "w": target.window}
    query = TEMPLATES[metric].format(**fill)
    if metric not in SHARES:
        return query
    requests = TEMPLATES["request_rate"].format(**fill)
    return f"({query} or 0 * {requests}) / {requests}"
