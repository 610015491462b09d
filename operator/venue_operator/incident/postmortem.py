"""postmortem: an incident as a post-mortem draft in Markdown (runbook P1 step 7). Pure.

What the operator knows goes in (summary, impact, TTD/TTM/TTR, the timeline, the
actions with their runbook sections, the Events, the graphs); what only humans know is
left as empty sections for them. What to graph is figures.py's; the I/O around both is
cli/report.py's. Numbers are rounded for people and said at the time they mattered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from venue_operator.decide.decision import Action, action_line
from venue_operator.incident.bookkeeping import text, times
from venue_operator.incident.figures import action_of, taken
from venue_operator.incident.impact import most_failed, runbook_of
from venue_operator.model.reasons import (
    DB_FAILURES,
    DB_OPERATIONS,
    HEALTH_CHECKS,
    HIGH_LATENCY,
    MONITORING,
    NOT_STARTING,
    RATE_LIMITS,
)
from venue_operator.model.status import (
    ActionRecord,
    CheckBreach,
    Impact,
    Incident,
    IncidentEntry,
)
from venue_operator.model.wording import fmt, severity_word, table

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
class EventLine:
    at: datetime | None
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Graph:
    title: str
    file: str  # relative to the Markdown
    query: str = ""  # the PromQL graphed (the assessment's, in the check's unit)


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


def _duration(value: timedelta | None) -> str:
    return text(value) or "n/a"


_SECTION = re.compile(r"\[runbook: ([^\]]+)\]")


def _section(entry: IncidentEntry, history: Sequence[ActionRecord]) -> str:
    """The entry's own section (an action's, kept with the incident); else its history
    record's (entries kept from before they had one); else `[runbook: ...]` in the text."""
    if entry.section:
        return entry.section
    found_action = action_of(entry)
    name = found_action[0] if found_action else None
    record = next((r for r in history if r.action == name and r.at == entry.at), None)
    if record is not None and record.section:
        return record.section
    found = _SECTION.findall(entry.message)
    return found[-1] if found else ""


def said(entry: IncidentEntry) -> str:
    """The entry's message; an action recorded before entries said it in words
    (`RollBack Succeeded: ...`) is said as the ledger says it now (`rollback succeeded:`)."""
    found = action_of(entry) if entry.action is None else None
    if found is None:
        return entry.message
    return action_line(found[0], found[1], entry.message.partition(": ")[2])


def timeline_rows(incident: Incident, history: Sequence[ActionRecord]) -> list[list[str]]:
    """Time, severity, what happened, runbook section: the first breach observed, then the
    incident's own timeline as status holds it."""
    rows = []
    if incident.began_at is not None and incident.began_at < incident.opened_at:
        rows.append([_t(incident.began_at), "", "breach first observed", ""])
    for e in incident.timeline:
        rows.append([_t(e.at), severity_word(e.severity), said(e), _section(e, history)])
    return rows


def _breach(b: CheckBreach) -> str:
    """`error_rate up to 12.3% (critical: above 5%), confirmed 10:00:05 UTC [runbook: ...]`."""
    value = f" up to {fmt(b.value, b.unit)}" if b.value is not None else ""
    limit = f": above {fmt(b.limit, b.unit)}" if b.limit is not None else ""
    limit = f" ({b.level}{limit})"
    section = f" [runbook: {b.section}]" if b.section else ""
    return f"{b.name}{value}{limit}, confirmed {b.at:%H:%M:%S} UTC{section}"


def _what(i: Incident) -> str:
    if i.breaches:
        return "; ".join(_breach(b) for b in sorted(i.breaches, key=lambda b: b.at))
    return said(i.timeline[0]) if i.timeline else "no timeline kept"


def _rollout(i: Incident) -> str:
    """The rollout running when the incident opened: revision, image, when it began."""
    r = i.rollout
    if r is None:
        return "not recorded (an incident from before the operator kept it)"
    image = f"image `{r.image}`" if r.image else "image not recorded"
    text = f"revision {r.revision} (pod template {r.template_hash}), {image}"
    if r.started_at is not None:
        # in whole seconds as both times are shown, so that the difference reads true
        before = int((i.began_at or i.opened_at).timestamp()) - int(r.started_at.timestamp())
        apart = _duration(timedelta(seconds=abs(before)))
        when = (
            "in the same second as the first breach"
            if before == 0
            else f"{apart} {'before' if before > 0 else 'after'} the first breach"
        )
        text += f", started {_t(r.started_at)} ({when})"
    return text


def _impact_words(impact: Impact) -> str:
    """The impact over the whole incident: totals and peaks, not a last cycle's rates."""
    text = f"~{impact.failed_requests:.0f} failed requests (estimated)"
    if impact.peak_failing_rate and impact.request_rate:
        text += (f", at worst {fmt(impact.peak_failing_rate, '/s')} failing of about "
                 f"{fmt(impact.request_rate, '/s')}")  # fmt: skip
    if impact.tenants_affected:
        text += f"; {impact.tenants_affected} tenant(s) above the warning error share at once"
    if named := most_failed(impact, share="up to "):
        text += "; most failed: " + named
    return text + runbook_of(impact)


def _summary(d: Draft) -> list[str]:
    i, t = d.incident, times(d.incident)
    lines = [
        "## Summary", "",
        f"- **What happened:** {_what(i)}",
        f"- **Severity:** {severity_word(i.severity)} (worst during the incident)",
        f"- **Rollout running when it opened:** {_rollout(i)}",
        f"- **Began:** {_t(i.began_at or i.opened_at)}; **resolved:** "
        + (_t(i.resolved_at) if i.resolved_at else "not yet (still open)"),
        f"- **Duration:** {_duration(t.recover)}",  # TTR: None while open
        f"- **Time to detect / mitigate / recover:** {_duration(t.detect)} / "
        f"{_duration(t.mitigate)} / {_duration(t.recover)} (from the first breach observed)",
        f"- **Escalated to humans:** {'yes' if i.escalated else 'no'}",
    ]  # fmt: skip
    if i.impact is not None:
        lines.append(f"- **Impact:** {_impact_words(i.impact)}")
    else:
        lines.append("- **Impact:** not measured (no request metrics during the incident)")
    return lines


def _impact(d: Draft) -> list[str]:
    impact = d.incident.impact
    if impact is None or not impact.top_tenants:
        return []
    rows = [[t.tenant, f"{t.failed_requests:.0f}",
             "" if t.error_percent is None else fmt(t.error_percent, "%"),
             "yes" if t.affected else "no"] for t in impact.top_tenants]  # fmt: skip
    head = ["tenant", "failed requests (est.)", "highest error share", "above warning"]
    return ["", "## Impact by tenant", "", *table(head, rows)]


def _follow_up(d: Draft) -> list[str]:
    i = d.incident
    sections = list(i.impact.sections if i.impact else [])
    found = {s for _, _, _, s in timeline_rows(i, d.history) if s}
    found |= {b.section for b in i.breaches if b.section}
    sections += sorted(found - set(sections))
    lines = ["", "## Follow-up (from the runbook)", ""]
    for section in sections:
        for item in FOLLOW_UP.get(section, ()):
            lines.append(f"- [ ] {item} ({section})")
    if any(taken(e) == Action.ROLL_BACK for e in i.timeline):
        lines += [f"- [ ] {item} (Deployment: pre-deployment checklist, for the rolled-back "
                  "release)" for item in AFTER_ROLLBACK]  # fmt: skip
    return lines + [f"- [ ] {item}" for item in ALWAYS]


def _graphs(d: Draft) -> list[str]:
    lines = ["", "## Graphs", ""]
    if d.graphs_note:
        lines += [f"_{d.graphs_note}_", ""]
    for g in d.graphs:
        lines += [f"![{g.title}]({g.file})", ""]
        if g.query:
            lines += [f"Query: `{g.query}`", ""]
    if d.graphs:
        lines.append("Shaded: the incident, from the first breach observed to recovery. Dashed "
                     "lines: warning and critical thresholds; vertical lines: breach observed, "
                     "confirmed, actions, recovery.")  # fmt: skip
    return lines


def _events(d: Draft) -> list[str]:
    if not d.events:
        return ["", "## Events", "", "_No Events left (the API server keeps them about an hour)._"]
    rows = [[_t(e.at), e.type, e.reason, e.message] for e in d.events]
    return ["", "## Events", "", *table(["time", "type", "reason", "message"], rows)]


HUMAN_SECTIONS = ("Root cause", "Contributing factors", "What went well", "What went badly")


def markdown(d: Draft) -> str:
    """The post-mortem draft."""
    i = d.incident
    lines = [
        f"# Post-mortem draft: {d.namespace}/{d.name}, incident {i.id}", "",
        f"Generated by `venue-operator report` at {_t(d.generated_at)} from the VenueService's "
        "status, its Events and Prometheus. Everything below the line is for humans to write.",
        "", *_summary(d), *_impact(d), "", "## Timeline", "",
        *table(["time", "severity", "what happened", "runbook"], timeline_rows(i, d.history)),
        *_graphs(d), *_events(d), *_follow_up(d), "", "---",
    ]  # fmt: skip
    for title in HUMAN_SECTIONS:
        lines += ["", f"## {title}", "", "_To be written._"]
    lines += ["", "## Action items", "", *table(["action", "owner", "due"], [["", "", ""]])]
    return "\n".join(lines) + "\n"
