"""incidents: how long an incident took, and which resolved ones status keeps. Pure.

TTD, TTM and TTR are counted from the first breach observed (`began_at`): to the
incident's opening (the breach confirmed), to the first workload action that succeeded,
and to recovery. The last `INCIDENTS_KEPT` resolved incidents stay in status for the
post-mortem, compacted so that their size is bounded whatever happened in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from venue_operator.model.durations import format_duration
from venue_operator.model.status import INCIDENTS_KEPT, Incident, VenueServiceStatus

KEPT_TIMELINE = (5, 25)  # an archived incident keeps its first 5 and last 25 entries
KEPT_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class Times:
    detect: timedelta | None
    mitigate: timedelta | None
    recover: timedelta | None


def times(incident: Incident) -> Times:
    """TTD, TTM, TTR from the first breach observed (None: not (yet) happened)."""
    start = incident.began_at or incident.opened_at

    def since(at: datetime | None) -> timedelta | None:
        return None if at is None else max(timedelta(0), at - start)

    return Times(since(incident.opened_at), since(incident.mitigated_at),
                 since(incident.resolved_at))  # fmt: skip


def text(value: timedelta | None) -> str | None:
    if value is None:
        return None
    return format_duration(timedelta(seconds=round(value.total_seconds())))


def settle(incident: Incident) -> Incident:
    """The incident, with its TTD/TTM/TTR written down once it is resolved (once; an open
    one is returned as it is)."""
    if incident.resolved_at is None or incident.time_to_recover is not None:
        return incident
    t = times(incident)
    return incident.model_copy(update={"time_to_detect": text(t.detect),
                                       "time_to_mitigate": text(t.mitigate),
                                       "time_to_recover": text(t.recover)})  # fmt: skip


def compact(incident: Incident) -> Incident:
    """The incident as kept after the next one opened: what was said once is no longer
    needed; the timeline keeps its start and its end, each line bounded."""
    head, tail = KEPT_TIMELINE
    timeline = incident.timeline
    if len(timeline) > head + tail:
        timeline = [*timeline[:head], *timeline[-tail:]]
    timeline = [e.model_copy(update={"message": e.message[:KEPT_MESSAGE_CHARS]}) for e in timeline]
    return incident.model_copy(
        update={"timeline": timeline, "escalations": [], "pages": [], "held": []}
    )


def archive(status: VenueServiceStatus, opened: Incident | None) -> list[Incident]:
    """status.incidents once `opened` replaces the current incident: the last few resolved
    ones, oldest first, the replaced one settled and compacted."""
    before = status.incident
    if before is None or opened is None or before.id == opened.id:
        return status.incidents
    kept = [i for i in status.incidents if i.id != before.id]
    return [*kept, compact(settle(before))][-INCIDENTS_KEPT:]


def every(status: VenueServiceStatus) -> list[Incident]:
    """The incidents status holds, oldest first: those kept, then the current one."""
    return [*status.incidents, *([status.incident] if status.incident else [])]


def find(status: VenueServiceStatus, incident_id: str | None) -> Incident | None:
    """The incident by id (default: the current one, else the newest kept)."""
    held = every(status)
    if incident_id is None:
        return held[-1] if held else None
    return next((i for i in held if i.id == incident_id), None)
