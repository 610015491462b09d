"""postmortem: an incident as a post-mortem draft in Markdown (runbook P1 step 7). Pure.

What the operator knows goes in (summary, impact, TTD/TTM/TTR, the timeline, the
actions with their runbook sections, the Events, the graphs); what only humans know is
left as empty sections for them. Which metrics to graph, over which window and with
which markers is decided here too, so the I/O around it (cli/report.py) stays thin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from venue_operator.assess.checks import (
    DB_FAILURES,
    DB_OPERATIONS,
    HEALTH_CHECKS,
    HIGH_LATENCY,
    MONITORING,
    NOT_STARTING,
    RATE_LIMITS,
)
from venue_operator.decide.decision import Action
from venue_operator.incident.bookkeeping import text, times
from venue_operator.incident.impact import summary
from venue_operator.model.spec import Threshold, VenueServiceSpec
from venue_operator.model.status import ActionRecord, ActionResult, Incident, IncidentEntry

MARGIN = timedelta(minutes=2)  # graphed before the first breach and after recovery
MIN_MARGIN = timedelta(seconds=30)
POINTS = 240  # per graph: the range query's step is the window over this

# Runbook "Resolution" lists, per section: the follow-up once the fire is out.
FOLLOW_UP: dict[str, tuple[str, ...]] = {
    HIGH_LATENCY: (
        "Check connection pool saturation",
        "Look for missing indexes",
        "Review recent query changes",
    ),
    DB_FAILURES: (
        "Check PgBouncer status if used",
        "Verify connection limits",
        "Look for connection leaks (transactions not closed)",
    ),
    NOT_STARTING: (
        "Verify database credentials in secrets",
        "Check if migrations need to run",
        "Verify Redis connectivity",
    ),
    RATE_LIMITS: (
        "Identify abusive traffic patterns",
        "Temporarily increase limits if legitimate",
        "Consider tenant-specific overrides",
    ),
    DB_OPERATIONS: (
        "Check migration status (`npm run migrate:status`)",
        "Decide whether the migration must be rolled back",
    ),
    MONITORING: (
        "Check logs for errors (`kubectl logs -l app=venue-service --since=5m`)",
        "Follow the runbook section of each breached check",
    ),
    HEALTH_CHECKS: ("Check `/health/full` for the failing dependency",),
}
AFTER_ROLLBACK = ("All tests passing", "Migration tested in staging",
                  "Rollback plan documented", "Feature flags configured",
                  "Monitoring alerts verified")  # fmt: skip
ALWAYS = ("Status page updated (P1 step 5)", "Post-mortem meeting within 48 hours (P1 step 7)")


@dataclass(frozen=True)
class GraphSpec:
    """One metric to graph: its PromQL (over `$selector`), unit and the runbook's limits."""

    check: str
    title: str
    unit: str
    promql: str
    threshold: Threshold


_GRAPHS = {
    "error_rate": ("Error rate (5xx share)", "%",
                   '100 * sum(rate(http_requests_total{$selector,status_code=~"5.."}[$w]))'
                   " / sum(rate(http_requests_total{$selector}[$w]))"),
    "p99_latency": ("P99 latency", "ms",
                    "1000 * histogram_quantile(0.99, sum by (le) "
                    "(rate(http_request_duration_seconds_bucket{$selector}[$w])))"),
    "pool_utilisation": ("DB pool utilisation", "%",
                         "100 * sum(db_pool_in_use{$selector}) / sum(db_pool_size{$selector})"),
    "memory": ("Memory (resident / limit)", "%",
               "100 * sum(process_resident_memory_bytes{$selector})"
               " / sum(venue_memory_limit_bytes{$selector})"),
}  # fmt: skip


def graphs(incident: Incident, spec: VenueServiceSpec) -> list[GraphSpec]:
    """One graph per involved metric among error rate, P99, pool and memory (the error rate
    when none of them was involved: what users saw)."""
    t = spec.thresholds
    limits = {"error_rate": t.error_rate_percent, "p99_latency": t.p99_latency_ms,
              "pool_utilisation": t.pool_utilisation_percent,
              "memory": t.memory_percent}  # fmt: skip
    involved = set(incident.impact.checks if incident.impact else []) | _breached(incident)
    chosen = [c for c in _GRAPHS if c in involved] or ["error_rate"]
    return [GraphSpec(c, _GRAPHS[c][0], _GRAPHS[c][1], _GRAPHS[c][2], limits[c]) for c in chosen]


def _breached(incident: Incident) -> set[str]:
    """Checks named as breaching in the timeline (incidents kept from before impact)."""
    text = " ".join(e.message for e in incident.timeline)
    return {c for c in _GRAPHS if re.search(rf"\b{c} [^;]*> (warning|critical)", text)}


def query(graph: GraphSpec, selector: str, window: str) -> str:
    return graph.promql.replace("$selector", selector).replace("$w", window)


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


def _action_name(message: str) -> str | None:
    """The action a timeline line records (ledger: `RollBack Succeeded: ...`), whatever came
    of it."""
    first = message.split(" ", 1)[0]
    return first if first in _ACTIONS else None


def _taken(message: str) -> str | None:
    """The action a timeline line records, if it was carried out: not held back
    (Suppressed), failed or a dry run (`Succeeded (dry run):`)."""
    name = _action_name(message)
    return name if message.startswith(f"{name} {ActionResult.SUCCEEDED}:") else None


def markers(incident: Incident) -> list[Marker]:
    """Breach first observed, breach confirmed, each action taken, recovery."""
    out = []
    if incident.began_at is not None:
        out.append(Marker(incident.began_at, "breach", "breach observed"))
    out.append(Marker(incident.opened_at, "confirmed", "breach confirmed"))
    for entry in incident.timeline:
        name = _taken(entry.message)
        if name is not None and name != Action.ESCALATE:
            out.append(Marker(entry.at, "action", name))
    if incident.resolved_at is not None:
        out.append(Marker(incident.resolved_at, "recovery", "recovered"))
    return out


@dataclass(frozen=True)
class EventLine:
    at: datetime | None
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Graph:
    title: str
    file: str  # relative to the Markdown


@dataclass(frozen=True)
class Draft:
    """Everything the Markdown is made of."""

    namespace: str
    name: str
    incident: Incident
    history: Sequence[ActionRecord]
    events: Sequence[EventLine]
    graphs: Sequence[Graph]
    graphs_note: str | None  # why there are no (or fewer) graphs
    generated_at: datetime


def _t(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _duration(value: timedelta | None) -> str:
    return text(value) or "n/a"


_SECTION = re.compile(r"\[runbook: ([^\]]+)\]")


def _section(entry: IncidentEntry, history: Sequence[ActionRecord]) -> str:
    """The entry's own section (an action's, kept with the incident); else its history
    record's (entries kept from before they had one); else `[runbook: ...]` in the text."""
    if entry.section:
        return entry.section
    name = _action_name(entry.message)
    record = next((r for r in history if r.action == name and r.at == entry.at), None)
    if record is not None and record.section:
        return record.section
    found = _SECTION.findall(entry.message)
    return found[-1] if found else ""


def timeline_rows(incident: Incident, history: Sequence[ActionRecord]) -> list[list[str]]:
    """Time, severity, what happened, runbook section: the first breach observed, then the
    incident's own timeline as status holds it."""
    rows = []
    if incident.began_at is not None and incident.began_at < incident.opened_at:
        rows.append([_t(incident.began_at), "", "breach first observed", ""])
    for e in incident.timeline:
        rows.append([_t(e.at), str(e.severity), e.message, _section(e, history)])
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _summary(d: Draft) -> list[str]:
    i, t = d.incident, times(d.incident)
    what = i.timeline[0].message if i.timeline else "no timeline kept"
    lines = [
        "## Summary", "",
        f"- **What happened:** {what}",
        f"- **Severity:** {i.severity} (worst during the incident)",
        f"- **Began:** {_t(i.began_at or i.opened_at)}; **resolved:** "
        + (_t(i.resolved_at) if i.resolved_at else "not yet (still open)"),
        f"- **Duration:** {_duration(t.recover)}",  # TTR: None while open
        f"- **Time to detect / mitigate / recover:** {_duration(t.detect)} / "
        f"{_duration(t.mitigate)} / {_duration(t.recover)} (from the first breach observed)",
        f"- **Escalated to humans:** {'yes' if i.escalated else 'no'}",
    ]  # fmt: skip
    if i.impact is not None:
        lines.append(f"- **Impact:** {summary(i.impact)}")
    else:
        lines.append("- **Impact:** not measured (no request metrics during the incident)")
    return lines


def _impact(d: Draft) -> list[str]:
    impact = d.incident.impact
    if impact is None or not impact.top_tenants:
        return []
    rows = [[t.tenant, f"{t.failed_requests:.0f}",
             "" if t.error_percent is None else f"{t.error_percent:g}%",
             "yes" if t.affected else "no"] for t in impact.top_tenants]  # fmt: skip
    head = ["tenant", "failed requests (est.)", "highest error share", "above warning"]
    return ["", "## Impact by tenant", "", *_table(head, rows)]


def _follow_up(d: Draft) -> list[str]:
    i = d.incident
    sections = list(i.impact.sections if i.impact else [])
    sections += sorted({s for _, _, _, s in timeline_rows(i, d.history) if s} - set(sections))
    lines = ["", "## Follow-up (from the runbook)", ""]
    for section in sections:
        for item in FOLLOW_UP.get(section, ()):
            lines.append(f"- [ ] {item} ({section})")
    if any(_taken(e.message) == Action.ROLL_BACK for e in i.timeline):
        lines += [f"- [ ] {item} (Deployment: pre-deployment checklist, for the rolled-back "
                  "release)" for item in AFTER_ROLLBACK]  # fmt: skip
    return lines + [f"- [ ] {item}" for item in ALWAYS]


def _graphs(d: Draft) -> list[str]:
    lines = ["", "## Graphs", ""]
    if d.graphs_note:
        lines += [f"_{d.graphs_note}_", ""]
    for g in d.graphs:
        lines += [f"![{g.title}]({g.file})", ""]
    if d.graphs:
        lines.append("Dashed lines: warning and critical thresholds; vertical lines: breach "
                     "observed, confirmed, actions, recovery.")  # fmt: skip
    return lines


def _events(d: Draft) -> list[str]:
    if not d.events:
        return ["", "## Events", "", "_No Events left (the API server keeps them about an hour)._"]
    rows = [[_t(e.at), e.type, e.reason, e.message] for e in d.events]
    return ["", "## Events", "", *_table(["time", "type", "reason", "message"], rows)]


HUMAN_SECTIONS = ("Root cause", "Contributing factors", "What went well", "What went badly")


def markdown(d: Draft) -> str:
    """The post-mortem draft."""
    i = d.incident
    lines = [
        f"# Post-mortem draft: {d.namespace}/{d.name}, incident {i.id}", "",
        f"Generated by `venue-operator report` at {_t(d.generated_at)} from the VenueService's "
        "status, its Events and Prometheus. Everything below the line is for humans to write.",
        "", *_summary(d), *_impact(d), "", "## Timeline", "",
        *_table(["time", "severity", "what happened", "runbook"], timeline_rows(i, d.history)),
        *_graphs(d), *_events(d), *_follow_up(d), "", "---",
    ]  # fmt: skip
    for title in HUMAN_SECTIONS:
        lines += ["", f"## {title}", "", "_To be written._"]
    lines += ["", "## Action items", "", *_table(["action", "owner", "due"], [["", "", ""]])]
    return "\n".join(lines) + "\n"
