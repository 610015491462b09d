"""alerts: the alert an open incident fires, and what to post so Alertmanager follows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from venue_operator.incident.impact import IMPACT_PREFIX, summary
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    CheckStatus,
    Health,
    Impact,
    Incident,
    IncidentEntry,
    Level,
    Severity,
    VenueServiceStatus,
)
from venue_operator.paging.alerts import ALERTNAME, Alert, Sent, after_post, body, firing, to_post

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
OPENED = NOW - timedelta(minutes=3)
ERRORS = CheckStatus(name="error_rate", level=Level.CRITICAL, value=12, unit="%",
                     section="Monitoring & Alerts")  # fmt: skip
MEMORY = CheckStatus(name="memory", level=Level.WARNING, section="Monitoring & Alerts")
POOL = CheckStatus(name="pool_utilisation", level=Level.WARNING,
                   section="Database Connection Failures")  # fmt: skip
LATENCY_UNKNOWN = CheckStatus(name="p99_latency", level=Level.UNKNOWN, section="High Latency")
HEALTH_OK = CheckStatus(name="health", level=Level.OK, section="Health Checks")


def _status(
    severity: Severity | None = Severity.P2, checks: tuple[CheckStatus, ...] = (HEALTH_OK, ERRORS),
    resolved: bool = False, escalated: bool = False, **fields: Any,
) -> VenueServiceStatus:  # fmt: skip
    entry = IncidentEntry(at=OPENED, severity=Severity.P2,
                          message="Degraded (P2): error_rate 12% > critical 5%")  # fmt: skip
    incident = Incident(id="inc-20261127-145700", opened_at=OPENED, severity=Severity.P2,
                        timeline=[entry], escalated=escalated,
                        resolved_at=NOW if resolved else None)  # fmt: skip
    return VenueServiceStatus(health=Health.DEGRADED, severity=severity, checks=list(checks),
                              incident=incident, **fields)  # fmt: skip


def _labels(alert: Alert | None) -> dict[str, str]:
    assert alert is not None
    return dict(alert.labels)


def test_no_incident_or_a_resolved_one_fires_nothing() -> None:
    assert firing("ns", "venue", VenueServiceStatus()) is None
    assert firing("ns", "venue", _status(resolved=True)) is None


def test_the_alert_names_the_service_severity_section_and_incident() -> None:
    alert = firing("shop", "venue", _status())
    assert _labels(alert) == {
        "alertname": ALERTNAME, "namespace": "shop", "venueservice": "venue", "severity": "P2",
        "runbook_section": "Monitoring & Alerts",
    }  # fmt: skip
    assert alert is not None
    notes = dict(alert.annotations)
    assert notes["incident_id"] == "inc-20261127-145700"
    assert notes["description"] == "Degraded (P2): error_rate 12% > critical 5%"
    assert notes["summary"] == "VenueService shop/venue is Degraded (P2)"
    assert notes["escalated"] == "false"
    assert alert.starts_at == OPENED and alert.ends_at is None


@pytest.mark.parametrize(
    ("checks", "section"),
    [
        ((HEALTH_OK, POOL, ERRORS), "Monitoring & Alerts"),  # critical before warning
        ((HEALTH_OK, POOL, MEMORY), "Database Connection Failures"),  # the first of the worst
        ((HEALTH_OK, LATENCY_UNKNOWN, POOL), "Database Connection Failures"),  # unknown last
        ((HEALTH_OK, LATENCY_UNKNOWN), "High Latency"),
        ((HEALTH_OK,), "Incident Response"),  # nothing in breach any more, still open
    ],
)
def test_runbook_section_is_the_worst_checks(checks: tuple[CheckStatus, ...], section: str) -> None:
    assert _labels(firing("ns", "v", _status(checks=checks)))["runbook_section"] == section


@pytest.mark.parametrize(
    ("current", "label"),
    [(Severity.P1, "P1"), (Severity.P3, "P3"), (Severity.P4, "P4"),
     (Severity.NONE, "P2"), (Severity.UNKNOWN, "P2"), (None, "P2")],  # none known: the incident's
)  # fmt: skip
def test_severity_label(current: Severity | None, label: str) -> None:
    assert _labels(firing("ns", "v", _status(severity=current)))["severity"] == label


def test_escalation_and_last_action_are_annotations_not_labels() -> None:
    action = ActionRecord(at=NOW, action="RollBack", reason="r", result=ActionResult.SUCCEEDED,
                          correlation_id="c")  # fmt: skip
    alert = firing("ns", "v", _status(escalated=True, last_action=action))
    assert alert is not None
    notes = dict(alert.annotations)
    assert notes["escalated"] == "true" and notes["last_action"] == "RollBack Succeeded"
    assert _labels(alert) == _labels(firing("ns", "v", _status()))


# --- what to post ---------------------------------------------------------------------

P2 = firing("ns", "v", _status())
P1 = firing("ns", "v", _status(severity=Severity.P1))
ESCALATED = firing("ns", "v", _status(escalated=True))
assert P2 is not None and P1 is not None and ESCALATED is not None
RESEND = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("sent", "current", "posted"),
    [
        (None, None, []),  # nothing open, nothing sent
        (None, P2, [P2]),  # opened (or the operator restarted mid-incident): fire at once
        (Sent(P2, NOW - timedelta(seconds=10)), P2, []),  # unchanged, sent recently
        (Sent(P2, NOW - RESEND), P2, [P2]),  # unchanged: re-sent every period
        (Sent(P2, NOW - timedelta(seconds=10)), ESCALATED, [ESCALATED]),  # new annotations
        (Sent(P2, NOW - timedelta(seconds=10)), P1, [P2.ended(NOW), P1]),  # new labels
        (Sent(P2, NOW - timedelta(seconds=10)), None, [P2.ended(NOW)]),  # resolved
    ],
)  # fmt: skip
def test_to_post(sent: Sent | None, current: Alert | None, posted: list[Alert]) -> None:
    assert to_post(sent, current, NOW, RESEND) == posted


@pytest.mark.parametrize(
    ("posted", "remembered"),
    [
        ([P2], Sent(P2, NOW)),
        ([P2.ended(NOW), P1], Sent(P1, NOW)),
        ([P2.ended(NOW)], None),  # ended: nothing left to re-send
    ],
)
def test_after_post(posted: list[Alert], remembered: Sent | None) -> None:
    assert after_post(posted, NOW) == remembered


def test_body_is_alertmanagers_postable_alerts() -> None:
    (fired,) = body([P2], NOW, RESEND)
    assert fired["labels"]["severity"] == "P2"
    assert fired["annotations"]["incident_id"] == "inc-20261127-145700"
    assert fired["startsAt"] == "2026-11-27T14:57:00Z"
    # firing: valid for 4 resend periods, so a silent operator's alert resolves by itself
    assert fired["endsAt"] == "2026-11-27T15:04:00Z"
    (ended,) = body([P2.ended(NOW)], NOW, RESEND)
    assert ended["endsAt"] == "2026-11-27T15:00:00Z"


def test_the_description_is_the_latest_line_about_the_service_and_impact_its_own_annotation() -> (
    None
):
    status = _status()
    assert status.incident is not None
    impact = Impact(updated_at=NOW, request_rate=20, failing_rate=2.4, failed_requests=130,
                    tenants_affected=2)  # fmt: skip
    line = IncidentEntry(at=NOW, severity=Severity.P2, message=f"{IMPACT_PREFIX}{summary(impact)}")
    incident = status.incident.model_copy(
        update={"impact": impact, "timeline": [*status.incident.timeline, line]}
    )
    annotations = dict(firing("shop", "venue", status.model_copy(update={"incident": incident}))
                       .annotations)  # type: ignore[union-attr]  # fmt: skip
    assert annotations["description"] == "Degraded (P2): error_rate 12% > critical 5%"
    assert annotations["impact"].startswith("~130 failed requests")
    assert "impact" not in dict(firing("shop", "venue", status).annotations)  # type: ignore[union-attr]
