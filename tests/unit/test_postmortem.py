"""postmortem (pure) and the PNGs: the draft's sections, timeline, graphs and markers."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from tests.unit.builders import ONE_SHOT, SPEC, metrics, observe
from venue_operator.assess.assessment import assess
from venue_operator.decide.decision import ROLLBACK_SECTION, Action, Decision
from venue_operator.incident import bookkeeping, figures, postmortem
from venue_operator.incident.graphs import DPI, HEIGHT_IN, WIDTH_IN, GraphsUnavailable, draw
from venue_operator.model.observations import Reading
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    CheckBreach,
    Health,
    Impact,
    Incident,
    IncidentEntry,
    IncidentRollout,
    Level,
    Severity,
    TenantImpact,
    VenueServiceStatus,
)
from venue_operator.observe.answers import matrix
from venue_operator.record import ledger
from venue_operator.record.transitions import severity_change

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
IMAGE = "registry.example/venue-service:2.4.0-rc1"
ROLLBACK_REASON = "error_rate 19% > critical 5% after the rollout of revision 2: roll back 2 -> 1"
INCIDENT = Incident(
    id="inc-20261127-100010", opened_at=T0 + timedelta(seconds=10), began_at=T0,
    mitigated_at=T0 + timedelta(seconds=10), resolved_at=T0 + timedelta(seconds=40),
    severity=Severity.P2, time_to_recover="40s",
    impact=Impact(updated_at=T0 + timedelta(seconds=39), request_rate=19.9, failing_rate=0,
                  peak_failing_rate=2.42, failed_requests=133.7, tenants_affected=3,
                  checks=["error_rate"], sections=["Monitoring & Alerts"],
                  top_tenants=[TenantImpact(tenant="tenant-b", failed_requests=50.4,
                                            error_percent=28.24, affected=True)]),
    breaches=[CheckBreach(name="error_rate", level=Level.CRITICAL, at=T0, value=19.04, unit="%",
                          limit=5, section="Monitoring & Alerts")],
    rollout=IncidentRollout(revision=2, template_hash="bbb222", image=IMAGE,
                            started_at=T0 - timedelta(seconds=20)),
    timeline=[
        IncidentEntry(at=T0 + timedelta(seconds=10), severity=Severity.P2,
                      message="Degraded (P2): error_rate 19% > critical 5% "
                      "[runbook: Monitoring & Alerts]"),
        IncidentEntry(at=T0 + timedelta(seconds=10), severity=Severity.P2,
                      message=f"rollback succeeded: {ROLLBACK_REASON}",
                      section=ROLLBACK_SECTION, action="RollBack",
                      result=ActionResult.SUCCEEDED),
        IncidentEntry(at=T0 + timedelta(seconds=25), severity=Severity.P3,
                      message="Degraded (P3): error_rate warning, recovering: 0.333%, not "
                      "above 1% [runbook: Monitoring & Alerts]"),
        IncidentEntry(at=T0 + timedelta(seconds=40), severity=Severity.NONE,
                      message="recovered: all checks ok"),
    ],
)  # fmt: skip
HISTORY = [
    ActionRecord(at=T0 + timedelta(seconds=10), action="RollBack", reason=ROLLBACK_REASON,
                 result=ActionResult.SUCCEEDED, correlation_id="rollback-1",
                 section=ROLLBACK_SECTION),
]  # fmt: skip


def draft(**changes: object) -> postmortem.Draft:
    base = {"namespace": "ns", "name": "venue-service", "incident": INCIDENT, "history": HISTORY,
            "events": [], "graphs": [postmortem.Graph("Error rate", "error_rate.png", "q")],
            "graphs_note": None, "generated_at": T0 + timedelta(minutes=5)}  # fmt: skip
    return postmortem.Draft(**{**base, **changes})  # type: ignore[arg-type]


def test_the_draft_has_the_facts_and_empty_sections_for_humans() -> None:
    text = postmortem.markdown(draft())
    assert "**Time to detect / mitigate / recover:** 10s / 10s / 40s" in text
    assert "![Error rate](error_rate.png)" in text and "Query: `q`" in text
    for section in ("## Root cause", "## Action items", "## What went well"):
        assert section in text
    assert "- [ ] Follow the runbook section of each breached check (Monitoring & Alerts)" in text
    assert "- [ ] Migration tested in staging" in text  # after a rollback


def test_the_summary_says_what_breached_and_the_rollout_it_ran_under() -> None:
    text = postmortem.markdown(draft())
    assert ("**What happened:** error_rate up to 19% (critical: above 5%), confirmed 10:00:00 "
            "UTC [runbook: Monitoring & Alerts]") in text  # fmt: skip
    assert (
        "**Rollout running when it opened:** revision 2 (pod template bbb222), image "
        f"`{IMAGE}`, started 2026-11-27 09:59:40 UTC (20s before the first breach)"
    ) in text


@pytest.mark.parametrize(
    ("started", "said"),
    [(-20, "20s before"), (0, "in the same second as"), (3, "3s after")],
)
def test_the_rollout_start_is_put_beside_the_first_breach(started: int, said: str) -> None:
    rollout = INCIDENT.rollout.model_copy(  # type: ignore[union-attr]
        update={"started_at": T0 + timedelta(seconds=started)}
    )
    text = postmortem.markdown(draft(incident=INCIDENT.model_copy(update={"rollout": rollout})))
    assert f"({said} the first breach)" in text


def test_numbers_are_rounded_for_people_and_said_at_the_time_they_mattered() -> None:
    text = postmortem.markdown(draft())
    assert ("**Impact:** ~134 failed requests (estimated), at worst 2.42/s failing of about "
            "19.9/s; 3 tenant(s) above the warning error share at once; most failed: "
            "tenant-b ~50 (up to 28.2%)") in text  # fmt: skip
    assert "| tenant-b | 50 | 28.2% | yes |" in text
    assert "133.7" not in text and "28.24" not in text


def test_the_draft_speaks_words_not_enum_values() -> None:
    text = postmortem.markdown(draft())
    assert "| healthy | recovered: all checks ok |" in text
    assert "rollback succeeded: error_rate 19%" in text
    assert "None" not in text and "RollBack" not in text
    assert not re.search(r"\bnow\b", text), "a post-mortem is read after the fact"


def test_the_timeline_rows_are_the_incidents_own_with_the_actions_runbook_section() -> None:
    rows = postmortem.timeline_rows(INCIDENT, HISTORY)
    assert [r[2] for r in rows] == ["breach first observed"] + [
        e.message for e in INCIDENT.timeline
    ]
    assert rows[2][3] == ROLLBACK_SECTION and rows[1][3] == "Monitoring & Alerts"


def test_an_old_kept_incident_keeps_each_actions_runbook_section_and_is_said_in_words() -> None:
    """status.history holds the last 50 actions, status.incidents 5 incidents: the runbook
    column of an old one comes from its own (compacted) timeline, not from history."""
    status = VenueServiceStatus(incident=Incident(id="i", opened_at=T0, severity=Severity.P2))
    decision = Decision(Action.ROLL_BACK, "error_rate 19% > 5%: roll back 2 -> 1",
                        ROLLBACK_SECTION)  # fmt: skip
    status, rec = ledger.started(status, decision, T0, "rollback-1")
    status = ledger.succeeded(status, rec)
    assert status.incident is not None
    kept = bookkeeping.compact(status.incident)
    (row,) = postmortem.timeline_rows(kept, history=[])
    assert row[2].startswith("rollback succeeded: error_rate") and row[3] == ROLLBACK_SECTION
    assert (kept.timeline[0].action, kept.timeline[0].result) == ("RollBack", "Succeeded")
    # written before entries had `action` (the ledger said `RollBack Succeeded: ...`)
    old = kept.timeline[0].model_copy(
        update={"action": None, "result": None, "message": f"RollBack Succeeded: {rec.reason}"}
    )
    before = kept.model_copy(update={"timeline": [old]})
    (row,) = postmortem.timeline_rows(before, history=[])
    assert row[2] == f"rollback succeeded: {rec.reason}" and row[3] == ROLLBACK_SECTION
    assert [m.label for m in figures.markers(before) if m.kind == "action"] == ["rollback"]


def test_without_prometheus_the_draft_says_so() -> None:
    text = postmortem.markdown(draft(graphs=[], graphs_note="No Prometheus given: no graphs."))
    assert "_No Prometheus given: no graphs._" in text and "![" not in text


def test_window_markers_and_title() -> None:
    start, end = figures.window(INCIDENT, T0 + timedelta(hours=1))
    # a margin as long as the incident (40 s), within 30 s .. 2 min
    assert (start, end) == (
        T0 - timedelta(seconds=40),
        T0 + timedelta(seconds=80),  # resolved at 40 s
    )
    kinds = [(m.kind, m.label) for m in figures.markers(INCIDENT)]
    assert kinds == [("breach", "breach observed"), ("confirmed", "breach confirmed"),
                     ("action", "rollback"), ("recovery", "recovered")]  # fmt: skip
    (graph,) = figures.graphs(INCIDENT, SPEC)
    title = figures.heading(graph, "ns", "venue-service", INCIDENT)
    assert title == ("Error rate (5xx share): ns/venue-service\n"
                     "incident inc-20261127-100010, 2026-11-27 10:00:00-10:00:40 UTC")  # fmt: skip


def test_one_graph_per_breached_metric_check_in_its_unit() -> None:
    at = T0 + timedelta(seconds=5)
    breaches = [
        CheckBreach(name="p99_latency", level=Level.WARNING, at=at, value=700, unit="ms"),
        CheckBreach(name="pods", level=Level.CRITICAL, at=at),  # no metric: no graph
        *INCIDENT.breaches,
    ]
    incident = INCIDENT.model_copy(update={"breaches": breaches})
    chosen = figures.graphs(incident, SPEC)
    assert [(g.check, g.metric, g.unit) for g in chosen] == [
        ("error_rate", "error_rate", "%"), ("p99_latency", "p99_latency", "ms")]  # fmt: skip
    assert figures.promql(chosen[1], "x") == "1000 * (x)"
    nothing = INCIDENT.model_copy(update={"breaches": [], "impact": None})
    assert [g.check for g in figures.graphs(nothing, SPEC)] == ["error_rate"]  # users' view


def test_a_graph_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    (graph,) = figures.graphs(INCIDENT, SPEC)
    points = [(T0 + timedelta(seconds=s), 19.0 if 0 <= s < 20 else 0.1) for s in range(-60, 80)]
    start, end = figures.window(INCIDENT, T0 + timedelta(hours=1))
    path = tmp_path / "error_rate.png"
    title = figures.heading(graph, "ns", "venue-service", INCIDENT)
    draw(graph, points, figures.markers(INCIDENT), start, end, path, title)
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", (WIDTH_IN * DPI, HEIGHT_IN * DPI))
        assert image.info["Title"] == title  # what the graph's title says


def test_range_answers_are_checked() -> None:
    ok = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1764237600,"1.5"],[1764237601,"NaN"]]}]}}'  # noqa: E501
    assert matrix(ok) == [(datetime.fromtimestamp(1764237600, UTC), 1.5)]
    assert matrix(b'{"status":"success","data":{"resultType":"matrix","result":[]}}') == []
    assert isinstance(matrix(b"junk"), str)
    assert isinstance(
        matrix(b'{"status":"success","data":{"resultType":"vector","result":[]}}'), str
    )


def test_without_matplotlib_drawing_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    (graph,) = figures.graphs(INCIDENT, SPEC)
    with pytest.raises(GraphsUnavailable, match=r"pip install 'venue-operator\[report\]'"):
        draw(graph, [], [], T0, T0 + timedelta(minutes=1), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (ActionResult.SUPPRESSED, f"RollBack Suppressed: {ROLLBACK_REASON}"),  # held back
        (ActionResult.FAILED, f"RollBack Failed: {ROLLBACK_REASON}"),
        (ActionResult.DRY_RUN, f"RollBack DryRun (dry run): {ROLLBACK_REASON}"),
        (ActionResult.DRY_RUN, f"RollBack Succeeded (dry run): {ROLLBACK_REASON}"),
    ],
)
def test_an_action_not_carried_out_is_neither_marked_nor_followed_up_as_one(
    result: ActionResult, line: str
) -> None:
    for fields in ({"result": result}, {"action": None, "result": None, "message": line}):
        said = [e.model_copy(update=fields) if e.action else e for e in INCIDENT.timeline]
        incident = INCIDENT.model_copy(update={"timeline": said})
        assert "action" not in [m.kind for m in figures.markers(incident)]
        text = postmortem.markdown(draft(incident=incident))
        assert "Migration tested in staging" not in text, fields


def test_the_events_the_draft_lists_say_severities_in_words() -> None:
    critical = assess(observe(metrics=metrics(error_rate=Reading.of(0.12))), ONE_SHOT)
    healthy = VenueServiceStatus(health=Health.HEALTHY, severity=Severity.NONE)
    said = severity_change(healthy, critical)
    assert said.startswith("healthy -> P2 (Healthy -> Degraded)"), said
    back = VenueServiceStatus(health=critical.health, severity=critical.severity,
                              checks=list(critical.checks))  # fmt: skip
    calm = assess(observe(), ONE_SHOT)
    assert severity_change(back, calm).startswith("P2 -> healthy (Degraded -> Healthy)")
