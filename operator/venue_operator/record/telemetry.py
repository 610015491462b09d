"""The operator's own Prometheus metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from venue_operator import __version__
from venue_operator.model.reasons import Reason
from venue_operator.model.status import CheckStatus, Health, Severity, VenueServiceStatus
from venue_operator.record import outbox

BUILD = Info("venue_operator_build", "The running operator's version")
BUILD.info({"version": __version__})

EVALUATION_SECONDS = Histogram(
    "venue_operator_evaluation_seconds",
    "Time of one evaluation cycle (observe + assess + record)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
METRICS_AGE = Histogram(
    "venue_operator_metrics_age_seconds",
    "Age of the Prometheus snapshot a cycle judged by (from its read's start): at most "
    "--metrics-max-age, or twice a read while Prometheus answers slower than half of that",
    buckets=(1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60),
)
FIRST_JUDGED = Histogram(
    "venue_operator_first_judged_seconds",
    "From a VenueService's loop starting on this replica (the replica starting, or the "
    "service taken over from another) to its first judged cycle (its phases: the log's "
    "loop.first_judged)",
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120),
)
STATUS_WRITES = Counter(
    "venue_operator_status_writes_total",
    "Status patches sent, by the first significant field that changed (check.field or field)",
    ["cause"],
)
STATUS_TAKEN = Counter(
    "venue_operator_status_taken_total",
    "Fenced status writes refused because someone else had written the status (adopted)",
)
EVENTS = Counter("venue_operator_events_total", "Events posted", ["reason"])
KEPT = Gauge(
    "venue_operator_kept_objects",
    "Pods, ReplicaSets, Jobs and HPAs kept in memory: those of this replica's VenueServices",
    ["kind"],
)
for _reason in Reason:  # every reason from 0, so increase() sees the first one
    EVENTS.labels(str(_reason))
ALERT_POSTS = Counter(
    "venue_operator_alertmanager_posts_total",
    "Posts to Alertmanager's /api/v2/alerts, by result (sent, failed)",
    ["result"],
)
for _result in ("sent", "failed"):  # from 0: the alert on failed posts needs the series
    ALERT_POSTS.labels(_result)
PAGES = Counter(
    "venue_operator_pages_total",
    "Page deliveries to webhooks, by result (delivered, failed)",
    ["result"],
)
for _result in ("delivered", "failed"):
    PAGES.labels(_result)
PROMETHEUS_QUERIES = Counter("venue_operator_prometheus_queries_total", "PromQL queries sent")
SKIPPED = Counter(
    "venue_operator_cycles_skipped_total",
    "Cycles not judged, by reason (operator_late: its probes were taken late by this replica's "
    "own lagging event loop; nothing was written or acted on)",
    ["reason"],
)
SKIPPED.labels("operator_late")
LOOP_LAG = Gauge(
    "venue_operator_event_loop_lag_seconds",
    "How late this replica's event loop ran a timer, the most over the last 10 s: over ~0.5 s "
    "its probes are judged late (not judged at all), give the replica CPU or more shards",
)
PAUSES = Histogram(
    "venue_operator_pause_seconds",
    "Pauses this replica's event loop makes itself, by cause: a garbage collection of "
    "generation 0, 1 or 2 (gc0, gc1, gc2: a full one walks every object the replica holds), "
    "malloc_trim",
    ["cause"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)

DEGRADED = Gauge(
    "venue_operator_degraded",
    "1 while the operator runs degraded for this reason (permission_missing, "
    "permission_unchecked), else 0",
    ["reason"],
)
PERMISSION_MISSING = Gauge(
    "venue_operator_permission_missing",
    "1 per verb and resource the operator's ServiceAccount may not use (checked at startup)",
    ["verb", "resource"],
)

FLEET_STORM = Gauge(
    "venue_operator_fleet_storm",
    "Services breaching this check together in a storm within this scope (namespace NAME, "
    "dependency NAME, cluster); no series when there is none (fleet/storm_watch.py)",
    ["scope", "check"],
)
FLEET_REPLICAS = Gauge(
    "venue_operator_fleet_replicas",
    "The replicas whose services the storm guard and the fleet-wide rate count together, by "
    "how: process (this process alone, without --shards), leases (the live shard members' "
    "Leases, fleet/exchange.py)",
    ["by"],
)


# --- per VenueService ---------------------------------------------------------------------
# What the PrometheusRule's alerts and the Grafana dashboard (charts/venue-operator) read, from
# the status each cycle ends with. Kept as one small record per service and rendered at scrape
# time (`_PerService`): prometheus_client's own labelled children cost ~700 bytes a series, 36 MB
# at 1,000 services of 52 series each (bench/metrics_size.py).

LEVEL_VALUE = {"ok": 0, "warning": 1, "critical": 2, "unknown": -1}
HELD_BY = ("budget", "cooldown", "storm")
# --service-metrics: "full" exports each check's value and thresholds (the dashboard's panels,
# about two thirds of a service's series); "alerts" only what the PrometheusRule's alerts read.
SERVICE_METRICS = ("full", "alerts")
_values = {"on": True}


def export_check_values(on: bool) -> None:
    _values["on"] = on


@dataclass(slots=True)
class _Service:
    evaluations: int = 0
    errors: int = 0
    levels: dict[str, int] = field(default_factory=dict)  # check -> LEVEL_VALUE
    exported: bool = False  # service_state ran: every health, severity and guardrail series
    health: Health | None = None
    severity: Severity | None = None
    escalated: bool = False
    held: dict[str, bool] = field(default_factory=dict)  # every guardrail that ever held too
    paging_failing: bool = False
    values: tuple[tuple[str, float], ...] = ()
    thresholds: tuple[tuple[str, str, float], ...] = ()  # (check, level, threshold)


_SERVICES: dict[tuple[str, str], _Service] = {}
# Services come and go on the event loop's thread while /metrics is rendered on the exposition
# server's: a collection walking the dict as a loop added one failed the scrape ("dictionary
# changed size during iteration", a takeover at 5,000 over 4). A service's fields are replaced
# whole, never changed in place, so a snapshot of the dict is enough.
_SERVICES_LOCK = threading.Lock()


def _service(namespace: str, name: str) -> _Service:
    found = _SERVICES.get((namespace, name))
    if found is None:
        with _SERVICES_LOCK:
            found = _SERVICES.setdefault((namespace, name), _Service())
    return found


def evaluated(namespace: str, name: str, checks: Iterable[CheckStatus]) -> None:
    """One evaluation cycle ran: its confirmed level per check."""
    service = _service(namespace, name)
    service.evaluations += 1
    service.levels = {check.name: LEVEL_VALUE[check.level.value] for check in checks}


def failed(namespace: str, name: str) -> None:
    _service(namespace, name).errors += 1


def service_state(
    namespace: str, name: str, status: VenueServiceStatus, held_by: str | None
) -> None:
    """Export the state a cycle ended with. Every series exists from the first cycle (errors
    at 0, every health and severity), so alerts and panels see zeros rather than no data."""
    service = _service(namespace, name)
    incident = status.incident
    service.exported = True
    service.health, service.severity = status.health, status.severity
    service.escalated = incident is not None and incident.resolved_at is None and incident.escalated
    # a guardrail that held before reads 0 now
    service.held = {by: by == held_by for by in {*HELD_BY, *service.held,
                                                 *((held_by,) if held_by else ())}}  # fmt: skip
    service.paging_failing = outbox.failing(status) is not None
    if _values["on"]:
        service.values = tuple((c.name, c.value) for c in status.checks if c.value is not None)
        service.thresholds = tuple(
            (c.name, level, threshold) for c in status.checks
            for level, threshold in (("warning", c.warning), ("critical", c.critical))
            if threshold is not None
        )  # fmt: skip


def forget(namespace: str, name: str) -> None:
    """Drop a deleted VenueService's series: thousands of services come and go over a
    process's life, and their last values must not be scraped (or kept) forever."""
    with _SERVICES_LOCK:
        _SERVICES.pop((namespace, name), None)


class _PerService(Collector):
    def collect(self) -> Iterator[Metric]:
        ns_name = ["namespace", "name"]
        evaluations = CounterMetricFamily("venue_operator_evaluations", "Evaluation cycles run",
                                          labels=ns_name)  # fmt: skip
        errors = CounterMetricFamily("venue_operator_evaluation_errors", "Cycles that failed",
                                     labels=ns_name)  # fmt: skip
        levels = GaugeMetricFamily(
            "venue_operator_check_level",
            "Confirmed level per check: 0 ok, 1 warning, 2 critical, -1 unknown",
            labels=[*ns_name, "check"],
        )
        health = GaugeMetricFamily(
            "venue_operator_health",
            "1 for the VenueService's current health (Healthy, Degraded, Down, Unknown), 0 for "
            "the others", labels=[*ns_name, "health"],
        )  # fmt: skip
        severity = GaugeMetricFamily(
            "venue_operator_severity",
            "1 for the VenueService's current severity (P1..P4, None), 0 for the others",
            labels=[*ns_name, "severity"],
        )
        escalated = GaugeMetricFamily(
            "venue_operator_incident_escalated",
            "1 while the VenueService's open incident has been escalated to humans, else 0",
            labels=ns_name,
        )
        held = GaugeMetricFamily(
            "venue_operator_remediation_held",
            "1 while the action the runbook calls for is held back by this guardrail (budget, "
            "cooldown, ...), else 0", labels=[*ns_name, "by"],
        )  # fmt: skip
        paging = GaugeMetricFamily(
            "venue_operator_paging_failing",
            "1 while a page of this VenueService is not delivered after a failed attempt, "
            "else 0", labels=ns_name,
        )  # fmt: skip
        values = GaugeMetricFamily(
            "venue_operator_check_value",
            "Last measured value per check, in the check's unit (absent while unknown)",
            labels=[*ns_name, "check"],
        )
        thresholds = GaugeMetricFamily(
            "venue_operator_check_threshold",
            "The warning and critical thresholds each check is judged against (from the spec)",
            labels=[*ns_name, "check", "level"],
        )
        with _SERVICES_LOCK:
            services = list(_SERVICES.items())
        for (namespace, name), service in services:
            key = [namespace, name]
            if service.evaluations:
                evaluations.add_metric(key, service.evaluations)
            for check, level in service.levels.items():
                levels.add_metric([*key, check], level)
            if service.exported or service.errors:
                errors.add_metric(key, service.errors)
            if service.exported:
                _one_hot(health, key, [h.value for h in Health], service.health)
                _one_hot(severity, key, [s.value for s in Severity], service.severity)
                escalated.add_metric(key, int(service.escalated))
                for by, holds in service.held.items():
                    held.add_metric([*key, by], int(holds))
                paging.add_metric(key, int(service.paging_failing))
            for check, value in service.values:
                values.add_metric([*key, check], value)
            for check, level_name, threshold in service.thresholds:
                thresholds.add_metric([*key, check, level_name], threshold)
        yield from (evaluations, errors, levels, health, severity, escalated, held, paging,
                    values, thresholds)  # fmt: skip


def _one_hot(
    family: GaugeMetricFamily, key: list[str], every: list[str], current: Health | Severity | None
) -> None:
    for value in every:
        family.add_metric([*key, value], int(current is not None and current.value == value))


REGISTRY.register(_PerService())
