"""`venue-operator report NAME`: an incident's post-mortem draft, Markdown plus PNG graphs.

Reads the VenueService's status (the incident, current or kept), its Events and
Prometheus range queries around the incident, scoped like the operator's own (the
namespace label forced, the tenant's Prometheus only if allowed); writes nothing to
the cluster. Without Prometheus (or without matplotlib) the Markdown says so and
comes without graphs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from venue_operator.incident import figures, postmortem
from venue_operator.incident.bookkeeping import every, find
from venue_operator.incident.graphs import GraphsUnavailable, draw
from venue_operator.incident.postmortem import Draft, EventLine, Graph
from venue_operator.kube import calls
from venue_operator.kube.status_store import parse_status
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import Incident, VenueServiceStatus
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Endpoints, Limits, query_range
from venue_operator.observe.metrics_source import metrics_target, service_query
from venue_operator.tenancy.policy import Tenancy
from venue_operator.tenancy.redact import one_line

MAX_EVENTS = 100


class ReportError(Exception):
    """Nothing to report (no such incident): said on stderr, exit code 1."""


@dataclass
class Source:
    """Where the graphs' data comes from (the `run` flags' Prometheus and boundaries)."""

    prometheus_url: str | None = None
    tenancy: Tenancy = field(default_factory=Tenancy)
    auth: PrometheusAuth | None = None
    limits: Limits = field(default_factory=Limits)


def _event_time(event: dict[str, Any]) -> datetime | None:
    text = event.get("eventTime") or event.get("lastTimestamp") or event.get("firstTimestamp")
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


async def _read(namespace: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    api = await calls.connect()
    try:
        body = await calls.get_venueservice(api, namespace, name)
        selector_ = f"involvedObject.kind=VenueService,involvedObject.name={name}"
        events = await calls.list_events(api, namespace, selector_)
    finally:
        await api.close()
    return body, events


def _events(events: list[dict[str, Any]], start: datetime, end: datetime) -> list[EventLine]:
    lines = []
    for e in events:
        at = _event_time(e)
        if at is not None and not start <= at <= end:
            continue
        lines.append(EventLine(at, str(e.get("type", "")), str(e.get("reason", "")),
                               one_line(str(e.get("message", "")), 500)))  # fmt: skip
    lines.sort(key=lambda e: e.at or start)
    return lines[-MAX_EVENTS:]


async def _graphs(
    namespace: str, name: str, spec: VenueServiceSpec, incident: Incident, source: Source,
    out: Path, start: datetime, end: datetime,
) -> tuple[list[Graph], str | None]:  # fmt: skip
    """The PNGs written, and why some or all are missing."""
    admitted = metrics_target(spec, namespace, name, source.prometheus_url, source.tenancy)
    url = admitted.target.url
    if url is None:
        return [], "No Prometheus given (--prometheus-url): this report has no graphs."
    if admitted.refused is not None:
        return [], f"Prometheus refused by the tenant boundaries ({admitted.refused}): no graphs."
    step = figures.step_seconds(start, end)
    endpoints = Endpoints(source.limits, auth=source.auth, auth_url=source.prometheus_url)
    written: list[Graph] = []
    notes: list[str] = []
    try:
        for graph in figures.graphs(incident, spec):
            # the assessment's own query (an override if the spec sets one), in the check's unit
            promql = figures.promql(graph, service_query(graph.metric, admitted.target))
            points = await query_range(endpoints, url, promql, start, end, step)
            if isinstance(points, str):
                return written, f"Prometheus did not answer ({points}): this report has no graphs."
            if not points:
                notes.append(f"no {graph.check} data in Prometheus for this window")
                continue
            path = out / f"{graph.check}.png"
            try:
                title = figures.heading(graph, namespace, name, incident)
                draw(graph, points, figures.markers(incident), start, end, path, title)
            except GraphsUnavailable as exc:
                print(f"venue-operator report: {exc}", file=sys.stderr)
                return [], f"No graphs: {exc}."
            written.append(Graph(graph.title, path.name, promql))
    finally:
        endpoints.close()
    return written, ("; ".join(notes).capitalize() + ".") if notes else None


async def write_report(
    namespace: str, name: str, incident_id: str | None, out: Path | None, source: Source,
) -> Path:  # fmt: skip
    """Write the draft (and its graphs) into `out`; returns the Markdown's path."""
    body, raw_events = await _read(namespace, name)
    spec = VenueServiceSpec.model_validate(body["spec"])
    status: VenueServiceStatus = parse_status(body.get("status"))
    incident = find(status, incident_id)
    if incident is None:
        known = [i.id for i in every(status)]
        raise ReportError(f"no incident {incident_id or ''} in {namespace}/{name}'s status "
                          f"(kept: {', '.join(known) or 'none'})")  # fmt: skip
    now = datetime.now(UTC)
    out = out or Path(f"postmortem-{namespace}-{name}-{incident.id}")
    out.mkdir(parents=True, exist_ok=True)
    start, end = figures.window(incident, now)
    graphs, note = await _graphs(namespace, name, spec, incident, source, out, start, end)
    draft = Draft(namespace, name, incident, status.history, _events(raw_events, start, end),
                  graphs, note, now)  # fmt: skip
    path = out / "report.md"
    path.write_text(postmortem.markdown(draft))
    return path
