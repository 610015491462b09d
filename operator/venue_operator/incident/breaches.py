"""What an incident was about, kept as data: the checks that crossed a threshold (each at
its worst) and the rollout running when it opened. Pure.

The post-mortem graphs and words come from these, not from the timeline's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from venue_operator.model.observations import WorkloadState
from venue_operator.model.status import (
    BREACHES_KEPT,
    CheckBreach,
    CheckStatus,
    Incident,
    IncidentRollout,
    Level,
    RolloutRecord,
)

_WORSE = {Level.WARNING: 1, Level.CRITICAL: 2}


def _worst(before: CheckBreach | None, check: CheckStatus, now: datetime) -> CheckBreach:
    limit = check.critical if check.level is Level.CRITICAL else check.warning
    if before is None or _WORSE[check.level] > _WORSE[before.level]:
        return CheckBreach(name=check.name, level=check.level, at=before.at if before else now,
                           value=check.value, unit=check.unit, limit=limit,
                           section=check.section)  # fmt: skip
    # a threshold is crossed from below: the highest value is the worst
    higher = check.level is before.level and check.value is not None
    higher = higher and (before.value is None or (check.value or 0) > before.value)
    return before.model_copy(update={"value": check.value}) if higher else before


def noted(incident: Incident, checks: Iterable[CheckStatus], now: datetime) -> Incident:
    """The open incident with this cycle's breached checks folded in (first confirmed,
    worst level, highest value at it); a resolved one as it is."""
    if incident.resolved_at is not None:
        return incident
    kept = {b.name: b for b in incident.breaches}
    changed = False
    for check in checks:
        if check.level not in _WORSE:
            continue
        worst = _worst(kept.get(check.name), check, now)
        changed = changed or worst != kept.get(check.name)
        kept[check.name] = worst
    if not changed:
        return incident
    return incident.model_copy(update={"breaches": list(kept.values())[:BREACHES_KEPT]})


# A ReplicaSet created this long before the operator saw its template current is one reused
# (a rollback to it, an old template applied again): its creation is not this rollout's start.
FRESH = timedelta(minutes=5)


def _started(seen: datetime | None, created: datetime | None) -> datetime | None:
    """The rollout's start for people: its ReplicaSet's creation when that is fresh (the
    operator sees a template a cycle or two late), else when the operator saw it become
    current. (Decide's rule 3 blames a rollout from when the operator saw it, the later of
    the two: it never blames a rollout for a breach that began before it was seen.)"""
    if seen is None or (created is not None and timedelta(0) <= seen - created <= FRESH):
        return created
    return seen


def rollout_running(
    workload: WorkloadState, record: RolloutRecord | None
) -> IncidentRollout | None:
    """The rollout the Deployment runs: its revision, images and when it began."""
    if workload.revision is None or workload.template_hash is None:
        return None
    current = workload.current
    seen = record.seen_at if record and record.template_hash == workload.template_hash else None
    return IncidentRollout(revision=workload.revision, template_hash=workload.template_hash,
                           image=current.image if current else None,
                           started_at=_started(seen, workload.rollout_started_at))  # fmt: skip
