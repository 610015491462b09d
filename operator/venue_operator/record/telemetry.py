"""The operator's own Prometheus metrics."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from prometheus_client import Counter, Gauge, Histogram, Info

from venue_operator import __version__
from venue_operator.model.reasons import Reason
from venue_operator.model.status import Health, Severity, VenueServiceStatus
from venue_operator.record import outbox

BUILD = Info("venue_operator_build", "The running operator's version")
BUILD.info({"version": __version__})

EVALUATIONS = Counter(
    "venue_operator_evaluations_total", "Evaluation cycles run", ["namespace", "name"]
)
EVALUATION_SECONDS = Histogram(
    "venue_operator_evaluation_seconds",
    "Time of one evaluation cycle (observe + assess + record)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
ERRORS = Counter(
    "venue_operator_evaluation_errors_total", "Cycles that failed", ["namespace", "name"]
)
CHECK_LEVEL = Gauge(
    "venue_operator_check_level",
    "Confirmed level per check: 0 ok, 1 warning, 2 critical, -1 unknown",
    ["namespace", "name", "check"],
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
PAGING_FAILING = Gauge(
    "venue_operator_paging_failing",
    "1 while a page of this VenueService is not delivered after a failed attempt, else 0",
    ["namespace", "name"],
)
PROMETHEUS_QUERIES = Counter("venue_operator_prometheus_queries_total", "PromQL queries sent")

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

# Per VenueService, from the status each cycle ends with: what the PrometheusRule's alerts and
# the Grafana dashboard (charts/venue-operator) read.
HEALTH = Gauge(
    "venue_operator_health",
    "1 for the VenueService's current health (Healthy, Degraded, Down, Unknown), 0 for the others",
    ["namespace", "name", "health"],
)
SEVERITY = Gauge(
    "venue_operator_severity",
    "1 for the VenueService's current severity (P1..P4, None), 0 for the others",
    ["namespace", "name", "severity"],
)
CHECK_VALUE = Gauge(
    "venue_operator_check_value",
    "Last measured value per check, in the check's unit (absent while unknown)",
    ["namespace", "name", "check"],
)
CHECK_THRESHOLD = Gauge(
    "venue_operator_check_threshold",
    "The warning and critical thresholds each check is judged against (from the spec)",
    ["namespace", "name", "check", "level"],
)
ESCALATED = Gauge(
    "venue_operator_incident_escalated",
    "1 while the VenueService's open incident has been escalated to humans, else 0",
    ["namespace", "name"],
)
HELD = Gauge(
    "venue_operator_remediation_held",
    "1 while the action the runbook calls for is held back by this guardrail (budget, "
    "cooldown, ...), else 0",
    ["namespace", "name", "by"],
)
HELD_BY = ("budget", "cooldown", "storm")
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

LEVEL_VALUE = {"ok": 0, "warning": 1, "critical": 2, "unknown": -1}
PER_SERVICE = (EVALUATIONS, ERRORS, CHECK_LEVEL, HEALTH, SEVERITY, CHECK_VALUE, CHECK_THRESHOLD,
               ESCALATED, HELD, PAGING_FAILING)  # fmt: skip


# --service-metrics: "full" exports each check's value and thresholds (the dashboard's panels,
# about half of a service's series); "alerts" only what the PrometheusRule's alerts read.
SERVICE_METRICS = ("full", "alerts")
_values = {"on": True}


def export_check_values(on: bool) -> None:
    _values["on"] = on


class _Exported(NamedTuple):
    health: Health | None
    severity: Severity | None
    escalated: bool
    held_by: str | None
    thresholds: tuple[tuple[str, float | None, float | None], ...]


# What service_state last exported per VenueService, so that a steady service costs one
# comparison a cycle rather than ~40 label look-ups (a round of 1,000 services: 24 ms, not 183).
_EXPORTED: dict[tuple[str, str], _Exported] = {}


def service_state(
    namespace: str, name: str, status: VenueServiceStatus, held_by: str | None
) -> None:
    """Export the state a cycle ended with. Every series exists from the first cycle (errors
    at 0, every health and severity), so alerts and panels see zeros rather than no data."""
    incident = status.incident
    escalated = incident is not None and incident.resolved_at is None and incident.escalated
    thresholds = tuple((c.name, c.warning, c.critical) for c in status.checks)
    state = _Exported(status.health, status.severity, escalated, held_by, thresholds)
    for check in status.checks if _values["on"] else ():
        if check.value is None:
            with contextlib.suppress(KeyError):
                CHECK_VALUE.remove(namespace, name, check.name)
        else:
            CHECK_VALUE.labels(namespace, name, check.name).set(check.value)
    PAGING_FAILING.labels(namespace, name).set(int(outbox.failing(status) is not None))
    previous = _EXPORTED.get((namespace, name))
    if previous == state:
        return
    _EXPORTED[(namespace, name)] = state
    ERRORS.labels(namespace, name)
    for health in Health:
        HEALTH.labels(namespace, name, health.value).set(int(status.health is health))
    for severity in Severity:
        SEVERITY.labels(namespace, name, severity.value).set(int(status.severity is severity))
    ESCALATED.labels(namespace, name).set(int(escalated))
    # a guardrail that held last time reads 0 now (each change comes through here)
    was_held = previous.held_by if previous else None
    for by in {*HELD_BY, *(b for b in (held_by, was_held) if b)}:
        HELD.labels(namespace, name, by).set(int(by == held_by))
    for check_name, warning, critical in thresholds if _values["on"] else ():
        for level, threshold in (("warning", warning), ("critical", critical)):
            if threshold is not None:
                CHECK_THRESHOLD.labels(namespace, name, check_name, level).set(threshold)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted VenueService's series: thousands of services come and go over a
    process's life, and their last values must not be scraped (or kept) forever."""
    _EXPORTED.pop((namespace, name), None)
    for metric in PER_SERVICE:
        for labels in list(metric._metrics):
            if labels[:2] == (namespace, name):
                with contextlib.suppress(KeyError):
                    metric.remove(*labels)
