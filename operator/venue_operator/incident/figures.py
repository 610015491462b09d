"""What the post-mortem graphs: one graph per breached metric check, over which window,
with which markers and title. Pure; the PromQL itself is the assessment's own (the
report asks observe/prometheus.py for it), scaled here into the check's unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from venue_operator.assess.checks import READINGS
from venue_operator.decide.decision import Action, spoken
from venue_operator.model.spec import Threshold, VenueServiceSpec
from venue_operator.model.status import ActionResult, Incident, IncidentEntry

MARGIN = timedelta(minutes=2)  # graphed before the first breach and after recovery
MIN_MARGIN = timedelta(seconds=30)
POINTS = 240  # per graph: the range query's step is the window over this


@dataclass(frozen=True)
class GraphSpec:
    """One breached check to graph: the reading it comes from, its scale, unit and limits."""

    check: str
    title: str
    unit: str
    metric: str  # the reading's name: its PromQL is the assessment's (service_query)
    factor: float
    threshold: Threshold


def breached(incident: Incident) -> list[str]:
    """The checks that crossed a threshold, in the order they did (incidents kept from
    before `breaches` was recorded: the checks their impact names)."""
    names = [b.name for b in sorted(incident.breaches, key=lambda b: b.at)]
    return names or list(incident.impact.checks if incident.impact else [])


def graphs(incident: Incident, spec: VenueServiceSpec) -> list[GraphSpec]:
    """One graph per breached metric check (the error rate when none was one: what users
    saw)."""
    chosen = [c for c in breached(incident) if c in READINGS] or ["error_rate"]
    scales = {c: READINGS[c] for c in dict.fromkeys(chosen)}
    return [GraphSpec(c, s.title, s.unit, s.metric, s.factor, s.limits(spec))
            for c, s in scales.items()]  # fmt: skip


def promql(graph: GraphSpec, query: str) -> str:
    """The reading's query in the check's unit (a share x100 into %, seconds into ms)."""
    return query if graph.factor == 1 else f"{graph.factor:g} * ({query})"


def heading(graph: GraphSpec, namespace: str, name: str, incident: Incident) -> str:
    """Two lines: what and whose; which incident and when (UTC)."""
    began = incident.began_at or incident.opened_at
    until = f"-{incident.resolved_at:%H:%M:%S}" if incident.resolved_at else " (open)"
    return (f"{graph.title}: {namespace}/{name}\n"
            f"incident {incident.id}, {began:%Y-%m-%d %H:%M:%S}{until} UTC")  # fmt: skip


def window(incident: Incident, now: datetime) -> tuple[datetime, datetime]:
    """From a margin before the first breach to a margin after recovery (or now): as long
    as the incident, between `MIN_MARGIN` and `MARGIN`."""
    began = incident.began_at or incident.opened_at
    margin = min(MARGIN, max(MIN_MARGIN, (incident.resolved_at or now) - began))
    return began - margin, max(began, min(now, (incident.resolved_at or now) + margin))


def step_seconds(start: datetime, end: datetime) -> int:
    return max(1, round((end - start).total_seconds() / POINTS))


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: str  # breach | confirmed | action | recovery
    label: str


_ACTIONS = tuple(a.value for a in Action)


def action_of(entry: IncidentEntry) -> tuple[str, ActionResult] | None:
    """The action an entry records and what came of it: its fields, or for entries kept
    from before it had them, the ledger's old `RollBack Succeeded: ...` wording."""
    if entry.action is not None and entry.result is not None:
        return entry.action, entry.result
    name, _, rest = entry.message.partition(" ")
    result = rest.split(":", 1)[0].split(" ", 1)[0]
    if name in _ACTIONS and result in tuple(ActionResult):
        dry = rest.startswith(f"{result} (dry run)")
        return name, ActionResult.DRY_RUN if dry else ActionResult(result)
    return None


def taken(entry: IncidentEntry) -> str | None:
    """The action an entry records, if it was carried out: not held back, failed or a dry
    run."""
    found = action_of(entry)
    return found[0] if found and found[1] is ActionResult.SUCCEEDED else None


def markers(incident: Incident) -> list[Marker]:
    """Breach first observed, breach confirmed, each action taken, recovery."""
    out = []
    if incident.began_at is not None:
        out.append(Marker(incident.began_at, "breach", "breach observed"))
    out.append(Marker(incident.opened_at, "confirmed", "breach confirmed"))
    for entry in incident.timeline:
        name = taken(entry)
        if name is not None and name != Action.ESCALATE:
            out.append(Marker(entry.at, "action", spoken(name)))
    if incident.resolved_at is not None:
        out.append(Marker(incident.resolved_at, "recovery", "recovered"))
    return out
