"""record: what an assessment means for status and Events.

Pure functions: the status the VenueService should have, whether that is worth a
write, and which Events a transition deserves (never one per cycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from venue_operator.assess.assessment import Assessment
from venue_operator.assess.checks import DEPLOYMENT_NOT_FOUND, METRIC_CHECKS
from venue_operator.decide import gitops
from venue_operator.incident import breaches
from venue_operator.incident.bookkeeping import archive, settle
from venue_operator.model.observations import WorkloadState
from venue_operator.model.reasons import Reason
from venue_operator.model.status import (
    HISTORY_LIMIT,
    CheckStatus,
    Condition,
    Health,
    Incident,
    IncidentEntry,
    Level,
    RolloutRecord,
    Severity,
    VenueServiceStatus,
)
from venue_operator.model.wording import above, clipped, fitted, fmt, severity_word

_RANK = {Level.UNKNOWN: -1, Level.OK: 0, Level.WARNING: 1, Level.CRITICAL: 2}


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: Reason
    message: str  # one line, with the numbers


def describe(check: CheckStatus, detail: bool = True) -> str:
    """`error_rate 12% > critical 5% [runbook: Monitoring & Alerts]` and the like; with
    `detail`, the check's reason too."""
    limit = check.critical if check.level is Level.CRITICAL else check.warning
    crossing = check.level in (Level.WARNING, Level.CRITICAL) and limit is not None
    if crossing and check.value is not None and limit is not None and check.value <= limit:
        # Held by hysteresis while this cycle's value is at or below the limit.
        value, limit_text = fmt(check.value, check.unit), fmt(limit, check.unit)
        if check.observed is Level.OK:
            text = f"{check.name} {check.level}, recovering: {value}, not above {limit_text}"
        else:
            text = f"{check.name} {check.level} (confirmed; {value}, limit {limit_text})"
    elif crossing and check.value is not None and limit is not None:
        value, limit_text = above(check.value, limit, check.unit)
        text = f"{check.name} {value} > {check.level} {limit_text}"
    elif crossing:
        text = f"{check.name} {check.level}"
    else:
        text = f"{check.name} {check.level}"
        if check.value is not None and check.unit:
            text += f" ({fmt(check.value, check.unit)})"
    if check.reason and detail:
        text += f": {check.reason}"
    return f"{text} [runbook: {check.section}]"


# A condition message is one line in `kubectl describe`: detail is dropped to fit, first
# the checks' reasons, then the last checks ("and 2 more"); never a word cut in two.
CONDITION_CHARS = 400


def said(checks: Sequence[CheckStatus], limit: int = CONDITION_CHARS) -> str:
    """The checks described in at most `limit` characters."""
    full = "; ".join(describe(c) for c in checks)
    if len(full) <= limit:
        return full
    return fitted([describe(c, detail=False) for c in checks], limit)


def condition(
    kind: str, status: str, reason: str, message: str, now: datetime,
    before: Condition | None, generation: int | None = None,
) -> Condition:  # fmt: skip
    """A condition whose transition time is `before`'s while its status stays, its message
    bounded at whole words."""
    since = before.last_transition_time if before and before.status == status else now
    return Condition(
        type=kind, status=status, reason=reason, message=clipped(message, CONDITION_CHARS),
        last_transition_time=since, observed_generation=generation,
    )  # fmt: skip


def _condition(
    kind: str, true: bool | None, reason: str, message: str, now: datetime,
    previous: Mapping[str, Condition], generation: int | None,
) -> Condition:  # fmt: skip
    status = "Unknown" if true is None else ("True" if true else "False")
    return condition(kind, status, reason, message, now, previous.get(kind), generation)


def conditions(
    a: Assessment, previous: Sequence[Condition], now: datetime, generation: int | None
) -> list[Condition]:
    before = {c.type: c for c in previous}
    breaches = said(a.breaches()) or _calm(a)
    healthy = None if a.health is Health.UNKNOWN else a.health is Health.HEALTHY
    degraded = None if a.health is Health.UNKNOWN else a.health is not Health.HEALTHY
    unknown = [c.name for c in a.checks if c.level is Level.UNKNOWN and c.name in METRIC_CHECKS]
    metrics_msg = "Prometheus answered" if a.metrics_available else _first_reason(a, "error_rate")
    return [
        _condition("Healthy", healthy, str(a.health), breaches, now, before, generation),
        _condition("Degraded", degraded, str(a.severity), breaches, now, before, generation),
        _condition(
            "MetricsAvailable", a.metrics_available,
            "Queried" if a.metrics_available else "MetricsUnavailable",
            fitted([metrics_msg, *([f"unknown: {', '.join(unknown)}"] if unknown else [])],
                   CONDITION_CHARS),
            now, before, generation,
        ),
    ]  # fmt: skip


def _calm(a: Assessment) -> str:
    """The Healthy/Degraded message when no threshold is crossed: say what is true."""
    if a.check("pods").reason == DEPLOYMENT_NOT_FOUND:
        return "waiting for the Deployment: not found"
    unknown = [c for c in a.checks if c.level is Level.UNKNOWN]
    if unknown:
        lead = "cannot judge: "
        return lead + said(unknown, CONDITION_CHARS - len(lead))
    return "all checks within thresholds"


def _first_reason(a: Assessment, name: str) -> str:
    reason = a.check(name).reason
    return reason or "no metric could be read"


def bake(rollout: RolloutRecord | None, a: Assessment, now: datetime) -> RolloutRecord | None:
    """Keep the start of the current run of confirmed Healthy cycles with nothing unknown:
    a template is trusted for what it did while watched, not for a gap in the data."""
    if rollout is None:
        return None
    clean = a.health is Health.HEALTHY and all(c.observed is not Level.UNKNOWN for c in a.checks)
    since = (rollout.healthy_since or now) if clean else None
    if since == rollout.healthy_since:
        return rollout
    return rollout.model_copy(update={"healthy_since": since})


def track_rollout(
    previous: RolloutRecord | None, workload: WorkloadState, now: datetime
) -> RolloutRecord | None:
    """When the current pod template became current, as first seen by the operator."""
    if workload.template_hash is None or workload.revision is None:
        return previous
    if previous is not None and previous.template_hash == workload.template_hash:
        if previous.revision == workload.revision:
            return previous
        return previous.model_copy(update={"revision": workload.revision})
    # Never seen before: when the operator starts late, the ReplicaSet's age is the best bound.
    seen = now if previous is not None else (workload.rollout_started_at or now)
    return RolloutRecord(template_hash=workload.template_hash, revision=workload.revision,
                         seen_at=seen)  # fmt: skip


def _remember(items: list[str], item: str | None) -> list[str]:
    if item is None or item in items:
        return items
    return [*items, item][-HISTORY_LIMIT:]


def track_incident(previous: Incident | None, a: Assessment, now: datetime) -> Incident | None:
    """Open on the first confirmed degradation, follow severity, resolve when healthy."""
    open_ = previous is not None and previous.resolved_at is None
    degraded = a.health in (Health.DEGRADED, Health.DOWN)
    if not open_:
        if not degraded:
            return previous
        first = IncidentEntry(at=now, severity=a.severity, message=_summary(a))
        return Incident(id=f"inc-{now:%Y%m%d-%H%M%S}", opened_at=now, severity=a.severity,
                        timeline=[first])  # fmt: skip
    assert previous is not None
    if a.health is Health.HEALTHY:
        entry = IncidentEntry(at=now, severity=Severity.NONE, message="recovered: all checks ok")
        # What held an action back no longer does: a resolved incident holds nothing.
        return add_timeline(previous, entry).model_copy(update={"resolved_at": now, "held": []})
    last_severity = previous.timeline[-1].severity if previous.timeline else None
    if degraded and a.severity != last_severity:
        entry = IncidentEntry(at=now, severity=a.severity, message=_summary(a))
        worst = min(previous.severity, a.severity, key=lambda s: s.rank)
        return add_timeline(previous, entry).model_copy(update={"severity": worst})
    return previous


def add_timeline(incident: Incident, entry: IncidentEntry) -> Incident:
    return incident.model_copy(update={"timeline": [*incident.timeline, entry][-100:]})


def _summary(a: Assessment) -> str:
    breaches = "; ".join(describe(c) for c in a.breaches())
    return f"{a.health} ({a.severity}): {breaches or 'no threshold crossed'}"[:2000]


def next_status(
    a: Assessment,
    workload: WorkloadState,
    previous: VenueServiceStatus,
    now: datetime,
    generation: int | None,
    bake_time: timedelta = timedelta(minutes=5),
) -> VenueServiceStatus:
    """The status after this cycle; history and actions are carried over. A template is
    remembered as known-good after `bake_time` of confirmed Healthy cycles with no unknown
    reading (runbook: verify the deployment), so a bad release is not trusted in its first
    healthy seconds, nor for a gap in the data."""
    tracked = track_incident(previous.incident, a, now)
    incident = settle(tracked) if tracked is not None else None
    rollout = track_rollout(previous.rollout, workload, now)
    # Known-good already: its bake is over. Tracked on, each unknown cycle and the next clean
    # one each wrote status (at 5,000 services, 2,000-5,000 writes a replica in 6 minutes).
    if workload.template_hash not in previous.healthy_templates:
        rollout = bake(rollout, a, now)
    if incident is not None:
        incident = _noted(incident, previous.incident, a, workload, rollout, now)
    healthy = previous.healthy_templates
    since = rollout.healthy_since if rollout is not None else None
    # A template rolled back from stays bad even if it bakes healthy once re-applied (by a
    # GitOps sync): one template is never both a rollback target and one rolled back from.
    rolled_back = workload.template_hash in previous.rolled_back_templates
    if since is not None and now - since >= bake_time and not rolled_back:
        healthy = _remember(healthy, workload.template_hash)
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "health": a.health,
            "severity": a.severity,
            "ready": f"{workload.ready}/{workload.desired}" if workload.found else None,
            "revision": workload.revision,
            "checks": list(a.checks),
            "conditions": conditions(a, previous.conditions, now, generation),
            "last_error": None,
            "rollout": rollout,
            "healthy_templates": healthy,
            "incident": incident,
            "gitops": gitops.shown(previous.gitops, workload.gitops),
            "incidents": archive(previous, incident),
        }
    )


def _noted(
    incident: Incident, before: Incident | None, a: Assessment, workload: WorkloadState,
    rollout: RolloutRecord | None, now: datetime,
) -> Incident:  # fmt: skip
    """The incident with its breached checks, and the rollout it opened under."""
    incident = breaches.noted(incident, a.checks, now)
    if before is None or before.id != incident.id:
        running = breaches.rollout_running(workload, rollout)
        incident = incident.model_copy(update={"rollout": running})
    return incident


def transition_events(previous: VenueServiceStatus, a: Assessment) -> list[EventSpec]:
    """Events for what changed since the stored status (never one per steady cycle)."""
    events: list[EventSpec] = []
    before = {c.name: c for c in previous.checks}
    for check in a.checks:
        old = before.get(check.name)
        old_level = old.level if old else Level.OK
        if check.level is old_level:
            continue
        if check.level in (Level.WARNING, Level.CRITICAL) and _RANK[check.level] > _RANK[old_level]:
            events.append(EventSpec("Warning", Reason.THRESHOLD_BREACHED, describe(check)))
        elif check.level is Level.OK and old_level in (Level.WARNING, Level.CRITICAL):
            events.append(EventSpec("Normal", Reason.RECOVERED, describe(check)))
    pods, old_pods = a.check("pods"), before.get("pods")
    if pods.reason == DEPLOYMENT_NOT_FOUND and (old_pods is None or old_pods.reason != pods.reason):
        events.append(EventSpec("Warning", Reason.WAITING_FOR_DEPLOYMENT,
                                "waiting for the Deployment: not found; nothing is judged or "
                                "acted on until it exists"))  # fmt: skip
    was_available = not any(
        c.type == "MetricsAvailable" and c.status == "False" for c in previous.conditions
    )
    if was_available and not a.metrics_available:
        events.append(
            EventSpec("Warning", Reason.METRICS_UNAVAILABLE, _first_reason(a, "error_rate")[:500])
        )
    if previous.severity is not None and previous.severity != a.severity:
        events.append(
            EventSpec(
                "Warning" if a.health is not Health.HEALTHY else "Normal",
                Reason.SEVERITY_CHANGED,
                severity_change(previous, a),
            )
        )
    return events


def severity_change(previous: VenueServiceStatus, a: Assessment) -> str:
    """`P3 -> P2 (still Degraded): error_rate warning -> critical`: what moved it."""
    health = (f"still {a.health}" if previous.health == a.health
              else f"{previous.health} -> {a.health}")  # fmt: skip
    before = {c.name: c.level for c in previous.checks}
    moved = [f"{c.name} {before.get(c.name, Level.OK)} -> {c.level}" for c in a.checks
             if before.get(c.name, Level.OK) is not c.level]  # fmt: skip
    because = f": {', '.join(moved)}" if moved else ""
    was, now = severity_word(previous.severity), severity_word(a.severity)
    return f"{was} -> {now} ({health}){because}"
