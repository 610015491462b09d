"""What Alertmanager should know about a VenueService: the alert its open incident fires, and
what to post now so that Alertmanager's view follows the incident. Pure (paging/alertmanager.py
posts it).

An alert is identified by its labels, so a severity or runbook section that changes is a new
alert: the old one is ended at once, not left to time out. While firing, an alert carries an
`endsAt` of a few resend periods ahead (as Prometheus does): re-sent before then it stays
firing, and if the operator stops sending (crash, VenueService deleted) it resolves by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from venue_operator.incident.impact import IMPACT_PREFIX, summary
from venue_operator.model.status import Level, Severity, VenueServiceStatus

ALERTNAME = "VenueServiceIncident"
RESEND = timedelta(minutes=1)  # Prometheus' --rules.alert.resend-delay
VALID_FOR = 4  # resend periods a firing alert stays valid without a re-send (Prometheus: 4)
FALLBACK_SECTION = "Incident Response"
_WORST_FIRST = (Level.CRITICAL, Level.WARNING, Level.UNKNOWN)


@dataclass(frozen=True)
class Alert:
    labels: tuple[tuple[str, str], ...]  # sorted (name, value): the alert's identity
    annotations: tuple[tuple[str, str], ...]
    starts_at: datetime
    ends_at: datetime | None = None  # None: firing, valid until the post's own horizon

    def ended(self, at: datetime) -> Alert:
        return replace(self, ends_at=at)


@dataclass(frozen=True)
class Sent:
    """The firing alert Alertmanager last accepted from us, and when."""

    alert: Alert
    at: datetime


def _section(status: VenueServiceStatus) -> str:
    for level in _WORST_FIRST:
        for check in status.checks:
            if check.level is level:
                return check.section
    return FALLBACK_SECTION


def _severity(status: VenueServiceStatus) -> Severity:
    """The current severity; while it is None or Unknown (blind) inside an open incident, the
    incident's (the alert keeps its identity through a metrics gap)."""
    current = status.severity
    if current is not None and current not in (Severity.NONE, Severity.UNKNOWN):
        return current
    return status.incident.severity if status.incident else Severity.NONE


def firing(namespace: str, name: str, status: VenueServiceStatus) -> Alert | None:
    """The alert the open incident fires, or None when no incident is open."""
    incident = status.incident
    if incident is None or incident.resolved_at is not None:
        return None
    severity = _severity(status)
    labels = {
        "alertname": ALERTNAME,
        "namespace": namespace,
        "venueservice": name,
        "severity": str(severity),
        "runbook_section": _section(status),
    }
    # the latest line about the service itself, not the impact lines written beside it
    said = [e.message for e in incident.timeline if not e.message.startswith(IMPACT_PREFIX)]
    reason = said[-1] if said else str(status.health)
    annotations = {
        "summary": f"VenueService {namespace}/{name} is {status.health} ({severity})",
        "description": reason[:1000],
        "incident_id": incident.id,
        "escalated": "true" if incident.escalated else "false",
    }
    if incident.impact is not None:
        annotations["impact"] = summary(incident.impact)[:1000]
    if status.last_action is not None:
        annotations["last_action"] = (f"{status.last_action.action} "
                                      f"{status.last_action.result}")  # fmt: skip
    return Alert(tuple(sorted(labels.items())), tuple(sorted(annotations.items())),
                 incident.opened_at)  # fmt: skip


def to_post(
    sent: Sent | None, current: Alert | None, now: datetime, resend: timedelta = RESEND
) -> list[Alert]:
    """What to post now: a new or changed alert at once, an unchanged one every `resend`,
    and the end of one that is no longer firing."""
    if sent is None:
        return [] if current is None else [current]
    if current is None:
        return [sent.alert.ended(now)]
    if current.labels != sent.alert.labels:
        return [sent.alert.ended(now), current]
    if current != sent.alert or now - sent.at >= resend:
        return [current]
    return []


def after_post(posted: list[Alert], now: datetime) -> Sent | None:
    """What was sent once Alertmanager accepted `posted`: its firing alert, if any."""
    live = [a for a in posted if a.ends_at is None]
    return Sent(live[-1], now) if live else None


def body(alerts: list[Alert], now: datetime, resend: timedelta = RESEND) -> list[dict[str, Any]]:
    """The JSON of `POST /api/v2/alerts` (postableAlerts)."""
    horizon = now + resend * VALID_FOR
    return [
        {
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "startsAt": _iso(a.starts_at),
            "endsAt": _iso(a.ends_at if a.ends_at is not None else horizon),
        }
        for a in alerts
    ]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
