"""The operator's own Prometheus metrics."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, Info

from venue_operator import __version__

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
EVENTS = Counter("venue_operator_events_total", "Events posted", ["reason"])
ALERT_POSTS = Counter(
    "venue_operator_alertmanager_posts_total",
    "Posts to Alertmanager's /api/v2/alerts, by result (sent, failed)",
    ["result"],
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

LEVEL_VALUE = {"ok": 0, "warning": 1, "critical": 2, "unknown": -1}


def forget(namespace: str, name: str) -> None:
    """Drop a deleted VenueService's series: thousands of services come and go over a
    process's life, and their last values must not be scraped (or kept) forever."""
    for metric in (EVALUATIONS, ERRORS):
        with contextlib.suppress(KeyError):
            metric.remove(namespace, name)
    for labels in list(CHECK_LEVEL._metrics):
        if labels[:2] == (namespace, name):
            with contextlib.suppress(KeyError):
                CHECK_LEVEL.remove(*labels)
