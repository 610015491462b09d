"""postmortem (pure) and the PNGs: the draft's sections, timeline, graphs and markers."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from tests.unit.builders import SPEC
from venue_operator.decide.decision import ROLLBACK_SECTION, Action, Decision
from venue_operator.incident import bookkeeping, postmortem
from venue_operator.incident.graphs import DPI, HEIGHT_IN, WIDTH_IN, GraphsUnavailable, draw
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    Impact,
    Incident,
    IncidentEntry,
    Severity,
    TenantImpact,
    VenueServiceStatus,
)
from venue_operator.observe.ranges import matrix
from venue_operator.record import ledger

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROLLBACK_REASON = (
    "error_rate 19% > critical 5% after a rollout: 2 -> 1 [runbook: Rollback Procedure]"
)
INCIDENT = Incident(
    id="inc-20261127-100010", opened_at=T0 + timedelta(seconds=10), began_at=T0,
    mitigated_at=T0 + timedelta(seconds=12), resolved_at=T0 + timedelta(seconds=40),
    severity=Severity.P2, time_to_recover="40s",
    impact=Impact(updated_at=T0 + timedelta(seconds=39), request_rate=20, failing_rate=0,
                  failed_requests=96, tenants_affected=3, checks=["error_rate"],
                  sections=["Monitoring & Alerts"],
                  top_tenants=[TenantImpact(tenant="tenant-b", failed_requests=50,
                                            error_percent=0.5, affected=True)]),
    timeline=[
        IncidentEntry(at=T0 + timedelta(seconds=10), severity=Severity.P2,
                      message="Degraded (P2): error_rate 19% > critical 5% "
                      "[runbook: Monitoring & Alerts]"),
        IncidentEntry(at=T0 + timedelta(seconds=12), severity=Severity.P2,
                      message=f"RollBack Succeeded: {ROLLBACK_REASON}"),
        IncidentEntry(at=T0 + timedelta(seconds=40), severity=Severity.NONE,
                      message="recovered: all checks ok"),
    ],
)  # fmt: skip
HISTORY = [
    ActionRecord(at=T0 + timedelta(seconds=12), action="RollBack", reason=ROLLBACK_REASON,
                 result=ActionResult.SUCCEEDED, correlation_id="rollback-1",
                 section="Rollback Proc"),
]  # fmt: skip


def draft(**changes: object) -> postmortem.Draft:
    base = {"namespace": "ns", "name": "venue-service", "incident": INCIDENT, "history": HISTORY,
            "events": [], "graphs": [postmortem.Graph("Error rate", "error_rate.png")],
            "graphs_note": None, "generated_at": T0 + timedelta(minutes=5)}  # fmt: skip
    return postmortem.Draft(**{**base, **changes})  # type: ignore[arg-type]


def test_the_draft_has_the_facts_and_empty_sections_for_humans() -> None:
    text = postmortem.markdown(draft())
    assert "**Time to detect / mitigate / recover:** 10s / 12s / 40s" in text
    assert "~96 failed requests" in text and "| tenant-b | 50 | 0.5% | yes |" in text
    assert "![Error rate](error_rate.png)" in text
    for section in ("## Root cause", "## Action items", "## What went well"):
        assert section in text
    assert "- [ ] Follow the runbook section of each breached check (Monitoring & Alerts)" in text
    assert "- [ ] Migration tested in staging" in text  # after a rollback


def test_the_timeline_rows_are_the_incidents_own_with_the_actions_runbook_section() -> None:
    rows = postmortem.timeline_rows(INCIDENT, HISTORY)
    assert [r[2] for r in rows] == ["breach first observed"] + [
        e.message for e in INCIDENT.timeline
    ]
    assert rows[2][3] == "Rollback Proc" and rows[1][3] == "Monitoring & Alerts"


def test_an_old_kept_incident_keeps_each_actions_runbook_section() -> None:
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
    assert row[2].startswith("RollBack Succeeded") and row[3] == ROLLBACK_SECTION
    text = postmortem.markdown(draft(incident=kept, history=[]))
    assert f"roll back 2 -> 1 | {ROLLBACK_SECTION} |" in text


def test_without_prometheus_the_draft_says_so() -> None:
    text = postmortem.markdown(draft(graphs=[], graphs_note="No Prometheus given: no graphs."))
    assert "_No Prometheus given: no graphs._" in text and "![" not in text


def test_graphs_window_and_markers() -> None:
    assert [g.check for g in postmortem.graphs(INCIDENT, SPEC)] == ["error_rate"]
    start, end = postmortem.window(INCIDENT, T0 + timedelta(hours=1))
    # a margin as long as the incident (40 s), within 30 s .. 2 min
    assert (start, end) == (
        T0 - timedelta(seconds=40),
        T0 + timedelta(seconds=80),  # resolved at 40 s
    )
    kinds = [(m.kind, m.label) for m in postmortem.markers(INCIDENT)]
    assert kinds == [("breach", "breach observed"), ("confirmed", "breach confirmed"),
                     ("action", "RollBack"), ("recovery", "recovered")]  # fmt: skip
    query = postmortem.query(postmortem.graphs(INCIDENT, SPEC)[0], 'namespace="ns"', "1m")
    assert 'http_requests_total{namespace="ns",status_code=~"5.."}[1m]' in query


def test_a_graph_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    graph = postmortem.graphs(INCIDENT, SPEC)[0]
    points = [(T0 + timedelta(seconds=s), 19.0 if 0 <= s < 20 else 0.1) for s in range(-60, 80)]
    start, end = postmortem.window(INCIDENT, T0 + timedelta(hours=1))
    path = tmp_path / "error_rate.png"
    draw(graph, points, postmortem.markers(INCIDENT), start, end, path)
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", (WIDTH_IN * DPI, HEIGHT_IN * DPI))


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
    graph = postmortem.graphs(INCIDENT, SPEC)[0]
    with pytest.raises(GraphsUnavailable, match=r"pip install 'venue-operator\[report\]'"):
        draw(graph, [], [], T0, T0 + timedelta(minutes=1), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "line",
    [
        f"RollBack Suppressed: {ROLLBACK_REASON}",  # held back by a guardrail
        f"RollBack Failed: {ROLLBACK_REASON}",
        f"RollBack DryRun (dry run): {ROLLBACK_REASON}",
    ],
)
def test_an_action_not_carried_out_is_neither_marked_nor_followed_up_as_one(line: str) -> None:
    said = [e.model_copy(update={"message": line}) if e.message.startswith("RollBack") else e
            for e in INCIDENT.timeline]  # fmt: skip
    incident = INCIDENT.model_copy(update={"timeline": said})
    assert "action" not in [m.kind for m in postmortem.markers(incident)]
    text = postmortem.markdown(draft(incident=incident))
    assert line in text and "Migration tested in staging" not in text
