"""A deleted VenueService leaves no series behind in the operator's own metrics."""

from __future__ import annotations

import gc
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from venue_operator.model.reasons import Reason
from venue_operator.model.status import (
    CheckStatus,
    Health,
    Incident,
    Level,
    Severity,
    VenueServiceStatus,
)
from venue_operator.record import telemetry


def series_of(namespace: str, name: str) -> list[str]:
    return [
        f"{sample.name}{sample.labels}"
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.labels.get("namespace") == namespace and sample.labels.get("name") == name
    ]


def test_forget_drops_every_series_of_one_service_only() -> None:
    for name in ("gone", "stays"):
        checks = [CheckStatus(name="error_rate", level=Level.CRITICAL),
                  CheckStatus(name="memory", level=Level.OK)]  # fmt: skip
        telemetry.evaluated("ns", name, checks)
        telemetry.failed("ns", name)
    telemetry.forget("ns", "gone")
    assert series_of("ns", "gone") == []
    assert len(series_of("ns", "stays")) >= 4
    telemetry.forget("ns", "never-seen")  # nothing to drop: no error
    telemetry.forget("ns", "stays")


def value(metric: str, /, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def status_of(health: Health, severity: Severity, escalated: bool = False,
              resolved: bool = False) -> VenueServiceStatus:  # fmt: skip
    at = datetime(2026, 11, 27, tzinfo=UTC)
    incident = Incident(id="i-1", opened_at=at, severity=severity, escalated=escalated,
                        resolved_at=at if resolved else None)  # fmt: skip
    check = CheckStatus(name="error_rate", level=Level.CRITICAL, value=7.5, warning=1,
                        critical=5, section="Monitoring")  # fmt: skip
    unknown = CheckStatus(name="memory", level=Level.UNKNOWN, warning=70, critical=85,
                          section="Monitoring")  # fmt: skip
    return VenueServiceStatus(health=health, severity=severity, checks=[check, unknown],
                              incident=incident)  # fmt: skip


@pytest.mark.parametrize(
    ("health", "severity", "escalated", "resolved", "held_by", "exported_escalated"),
    [
        (Health.DOWN, Severity.P1, True, False, "budget", 1),
        (Health.DEGRADED, Severity.P2, True, True, None, 0),  # resolved: no longer escalated
        (Health.HEALTHY, Severity.NONE, False, False, "cooldown", 0),
    ],
)
def test_service_state_exports_health_severity_escalation_and_what_holds_back(
    health: Health, severity: Severity, escalated: bool, resolved: bool, held_by: str | None,
    exported_escalated: int,
) -> None:  # fmt: skip
    ns = {"namespace": "ns", "name": "svc"}
    telemetry.service_state("ns", "svc", status_of(health, severity, escalated, resolved), held_by)
    for h in Health:
        assert value("venue_operator_health", **ns, health=h.value) == int(h is health)
    for s in Severity:
        assert value("venue_operator_severity", **ns, severity=s.value) == int(s is severity)
    assert value("venue_operator_incident_escalated", **ns) == exported_escalated
    for by in telemetry.HELD_BY:
        assert value("venue_operator_remediation_held", **ns, by=by) == int(by == held_by)
    assert value("venue_operator_evaluation_errors_total", **ns) == 0  # exists from the start
    assert value("venue_operator_check_value", **ns, check="error_rate") == 7.5
    assert value("venue_operator_check_value", **ns, check="memory") is None  # unknown: absent
    for check, level, threshold in (("error_rate", "critical", 5), ("memory", "warning", 70)):
        assert value("venue_operator_check_threshold", **ns, check=check,
                     level=level) == threshold  # fmt: skip
    telemetry.forget("ns", "svc")
    assert series_of("ns", "svc") == []


def test_every_event_reason_is_counted_from_zero() -> None:
    for reason in Reason:
        assert value("venue_operator_events_total", reason=str(reason)) is not None


def test_a_guardrail_that_no_longer_holds_reads_zero() -> None:
    status = status_of(Health.DEGRADED, Severity.P2)
    telemetry.service_state("ns", "held", status, "something-new")
    telemetry.service_state("ns", "held", status, None)
    for by in (*telemetry.HELD_BY, "something-new"):
        assert value("venue_operator_remediation_held", namespace="ns", name="held", by=by) == 0
    telemetry.forget("ns", "held")


def test_service_metrics_alerts_exports_no_check_values_nor_thresholds() -> None:
    check = CheckStatus(name="error_rate", level=Level.OK, value=0.5, warning=1.0, critical=5.0)
    status = VenueServiceStatus(health=Health.HEALTHY, checks=[check])
    try:
        for name, full in (("lean", False), ("full", True)):
            telemetry.export_check_values(full)
            telemetry.service_state("metrics-ns", name, status, None)
        lean, full_series = series_of("metrics-ns", "lean"), series_of("metrics-ns", "full")
        dashboard = ("venue_operator_check_value", "venue_operator_check_threshold")
        assert not [s for s in lean if s.startswith(dashboard)]
        assert any(s.startswith("venue_operator_health") for s in lean)
        assert sum(s.startswith("venue_operator_check_threshold") for s in full_series) == 2
        assert len(lean) == len(full_series) - 3
    finally:
        telemetry.export_check_values(True)
        for name in ("lean", "full"):
            telemetry.forget("metrics-ns", name)


SERVICES = 5000


def test_metrics_render_while_the_loop_adds_and_forgets_services() -> None:
    """The exposition server renders on its own thread while loops come and go on the event
    loop's: a walk of the services as one was added failed the whole scrape. Collections
    made often, with a callback that lets the other thread run (as the pause histogram's can,
    on its lock), open the window."""
    stop = threading.Event()
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    for n in range(SERVICES):  # more than the 2,000 pairs CPython keeps for reuse: the walk
        telemetry.evaluated("churn", f"svc-{n}", [])  # allocates, and collections run in it

    def come_and_go() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            telemetry.evaluated("churn", f"svc-{n % SERVICES}", [])
            telemetry.forget("churn", f"svc-{(n + SERVICES // 2) % SERVICES}")

    churn = threading.Thread(target=come_and_go)
    gc.set_threshold(5)
    gc.callbacks.append(yielding := lambda phase, info: time.sleep(0))
    sys.setswitchinterval(1e-6)
    churn.start()
    try:
        for _ in range(3):
            list(telemetry._PerService().collect())
    finally:
        stop.set()
        churn.join()
        gc.callbacks.remove(yielding)
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
        for n in range(SERVICES):
            telemetry.forget("churn", f"svc-{n}")
