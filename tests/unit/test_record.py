"""record: Events only on transitions; status writes only when something changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.builders import HEALTHY_METRICS, ONE_SHOT, SPEC, metrics, observe
from venue_operator.assess.assessment import assess
from venue_operator.decide.decision import Action, Decision
from venue_operator.model.observations import (
    GitOpsRef,
    MetricReadings,
    ProbeFailure,
    ProbeResult,
    Reading,
    WorkloadState,
)
from venue_operator.model.status import (
    Incident,
    IncidentEntry,
    Level,
    RolloutRecord,
    Severity,
    VenueServiceStatus,
)
from venue_operator.record import ledger
from venue_operator.record.transitions import (
    describe,
    next_status,
    track_incident,
    transition_events,
)
from venue_operator.record.write_causes import (
    causes_between,
    significant,
    steady_mark,
    write_causes,
)

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def cycle(status: VenueServiceStatus, obs_metrics: MetricReadings, at: datetime = NOW):
    obs = observe(metrics=obs_metrics)
    a = assess(obs, SPEC, status.checks)
    return a, next_status(a, obs.workload, status, at, 1), transition_events(status, a)


def drive(readings: list[MetricReadings]) -> list[list[str]]:
    status, reasons = VenueServiceStatus(), []
    for i, m in enumerate(readings):
        _, status, events = cycle(status, m, NOW + timedelta(seconds=15 * i))
        reasons.append([e.reason for e in events])
    return reasons


def test_breach_and_recovery_post_one_event_each() -> None:
    bad = metrics(error_rate=Reading.of(0.12))
    reasons = drive([HEALTHY_METRICS] + [bad] * 5 + [HEALTHY_METRICS] * 5)
    flat = [r for cycle_reasons in reasons for r in cycle_reasons]
    assert flat.count("ThresholdBreached") == 1
    assert flat.count("Recovered") == 1
    assert flat.count("SeverityChanged") == 2  # None -> P2 -> None
    assert reasons[3] == ["ThresholdBreached", "SeverityChanged"]  # third bad cycle confirms


def test_steady_state_posts_nothing() -> None:
    reasons = drive([HEALTHY_METRICS] * 10)
    assert all(r == [] for r in reasons)


def test_metrics_unavailable_posts_once() -> None:
    down = Reading.unknown("prometheus query failed: ConnectionError")
    blind = MetricReadings(**dict.fromkeys(
        ["request_rate", "error_rate", "p99_latency", "pool_utilisation", "pool_pending",
         "memory_utilisation", "rate_limited"], down))  # fmt: skip
    flat = [r for rs in drive([HEALTHY_METRICS] + [blind] * 4) for r in rs]
    assert flat.count("MetricsUnavailable") == 1
    assert "ThresholdBreached" not in flat


def test_breach_message_has_the_numbers_and_the_section() -> None:
    status = VenueServiceStatus()
    for _ in range(3):
        a, status, _ = cycle(status, metrics(error_rate=Reading.of(0.12)))
    message = describe(a.check("error_rate"))
    assert message == "error_rate 12% > critical 5% [runbook: Monitoring & Alerts]"


def test_conditions_keep_transition_time_while_unchanged() -> None:
    _, first, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS, NOW)
    _, second, _ = cycle(first, HEALTHY_METRICS, NOW + timedelta(minutes=5))
    healthy = {c.type: c for c in second.conditions}["Healthy"]
    assert healthy.status == "True" and healthy.last_transition_time == NOW


def test_no_write_while_steady_but_a_write_on_change() -> None:
    _, first, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS)
    jitter = metrics(p99_latency=Reading.of(0.16), error_rate=Reading.of(0.0012))
    _, second, _ = cycle(first, jitter, NOW + timedelta(seconds=15))
    assert not write_causes(first, second)
    bad = metrics(error_rate=Reading.of(0.12))
    _, third, _ = cycle(second, bad, NOW + timedelta(seconds=30))
    _, fourth, _ = cycle(third, bad, NOW + timedelta(seconds=45))
    assert {c.name: c for c in fourth.checks}["error_rate"].pending is Level.CRITICAL
    causes = write_causes(second, fourth)
    assert {"error_rate.observed", "error_rate.pending", "error_rate.breach"} <= set(causes)


def test_a_flicker_writes_nothing_and_a_written_streak_every_change() -> None:
    """One unknown reading (a late read) amid healthy ones costs no write, nor does the
    unknown streak until it is confirmed; nor does one breach reading (a probe that timed out
    once); a breach on its way is written from its second reading in a row, and once a streak
    is stored each change of it is (a replica taking over continues it); a takeover from the
    calm check counts an unwritten streak from 1 again."""
    _, calm, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS)
    late = metrics(error_rate=Reading.unknown("metrics not read within 21s"))
    statuses = [calm]
    for i, reading in enumerate([late, HEALTHY_METRICS, late, late, late], start=1):
        statuses.append(cycle(statuses[-1], reading, NOW + timedelta(seconds=15 * i))[1])
    flicker, back, once, twice, confirmed = statuses[1:]
    assert {c.name: c for c in flicker.checks}["error_rate"].pending is Level.UNKNOWN
    assert not write_causes(calm, flicker) and not write_causes(calm, back)
    assert not write_causes(calm, once) and not write_causes(calm, twice)
    assert "error_rate.level" in write_causes(calm, confirmed), "confirmed unknown is written"
    _, taken_over, _ = cycle(calm, late, NOW + timedelta(seconds=75))
    assert {c.name: c for c in taken_over.checks}["error_rate"].pending_count == 1
    bad = metrics(error_rate=Reading.of(0.12))
    _, read_once, _ = cycle(calm, bad, NOW + timedelta(seconds=15))
    assert {c.name: c for c in read_once.checks}["error_rate"].breach == [Level.CRITICAL]
    assert not write_causes(calm, read_once), "one breach reading rides along"
    _, gone, _ = cycle(read_once, HEALTHY_METRICS, NOW + timedelta(seconds=30))
    assert not write_causes(calm, gone), "and goes as it came"
    _, started, _ = cycle(read_once, bad, NOW + timedelta(seconds=30))
    assert {c.name: c for c in started.checks}["error_rate"].pending_count == 2
    assert {"error_rate.observed", "error_rate.breach"} <= set(write_causes(calm, started))
    _, broke, _ = cycle(started, HEALTHY_METRICS, NOW + timedelta(seconds=45))
    assert "error_rate.pending" in write_causes(started, broke), "a written streak's end is"
    _, went_late, _ = cycle(started, late, NOW + timedelta(seconds=45))
    assert "error_rate.pending" in write_causes(started, went_late)


def test_the_written_status_compared_as_its_mark_gives_the_same_causes() -> None:
    """The status store compares what it wrote as its steady mark read back (no parse and
    dump of the written status each cycle): the same causes as the statuses themselves."""
    statuses = [VenueServiceStatus()]
    late = metrics(error_rate=Reading.unknown("ran 5.8s late"))
    for reading in (HEALTHY_METRICS, metrics(error_rate=Reading.of(0.12)), late, HEALTHY_METRICS):
        for _ in range(2):
            _, status, _ = cycle(statuses[-1], reading)
            statuses.append(status)
    pairs = [(a, b) for a in statuses for b in statuses]
    assert any(write_causes(a, b) for a, b in pairs)
    for a, b in pairs:
        assert causes_between(json.loads(steady_mark(a)), significant(b)) == write_causes(a, b)


def test_values_alone_never_cause_a_write() -> None:
    _, first, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS)
    _, moved, _ = cycle(
        first, metrics(p99_latency=Reading.of(0.35), pool_utilisation=Reading.of(0.6)), NOW
    )
    assert not write_causes(first, moved), "still ok: nothing to act on, nothing to write"


def test_an_unknown_checks_reason_is_written_for_its_words_not_its_figures() -> None:
    """A degraded fleet wrote its status every cycle: the reasons' numbers moved (the lag, the
    queries in flight), and so did which way an answer came late (this replica's loop,
    Prometheus, a query's own limit); what it waits for changing is still worth a write."""
    statuses = []
    for reason in ("metrics not read within 21s: this replica's event loop ran 5.8s late",
                   "metrics not read within 21s: this replica's event loop ran 7.1s late",
                   "metrics not read within 21s: Prometheus is slow",
                   "prometheus query failed: answer not complete within 10s",
                   "prometheus query failed: no answer within 10s",
                   "error_rate returned 3 series; it must return one"):  # fmt: skip
        status = VenueServiceStatus()
        for _ in range(3):
            _, status, _ = cycle(status, metrics(error_rate=Reading.unknown(reason)))
        assert {c.name: c for c in status.checks}["error_rate"].level is Level.UNKNOWN
        statuses.append(status)
    *late, misconfigured = statuses
    assert not any(write_causes(a, b) for a in late for b in late)
    assert "error_rate.reason" in write_causes(late[-1], misconfigured)
    assert "error_rate.reason" in write_causes(misconfigured, late[0])


def test_a_level_held_by_hysteresis_says_it_is_recovering() -> None:
    status = VenueServiceStatus()
    for _ in range(3):
        _, status, _ = cycle(status, metrics(error_rate=Reading.of(0.02)))
    a, status, _ = cycle(status, HEALTHY_METRICS)
    check = a.check("error_rate")
    assert check.level is Level.WARNING and check.observed is Level.OK
    said = describe(check)
    assert said.startswith("error_rate warning, recovering: 0.1%, not above 1%"), said
    assert "now" not in said  # timeline lines are read long after


# --- incident rules, table-driven ---------------------------------------------------

OPEN = Incident(id="inc-1", opened_at=NOW - timedelta(minutes=5), severity=Severity.P2,
                timeline=[IncidentEntry(at=NOW - timedelta(minutes=5), severity=Severity.P2,
                                        message="Degraded (P2)")])  # fmt: skip
RESOLVED = OPEN.model_copy(update={"resolved_at": NOW - timedelta(minutes=1)})
ERRORS = metrics(error_rate=Reading.of(0.2))
DOWN = {"health": ProbeResult(ProbeFailure.CONNECTION_REFUSED)}


@pytest.mark.parametrize(
    ("previous", "changes", "expected"),
    [
        # (incident before, observation, (same id?, resolved?, severity, timeline longer?))
        pytest.param(None, {}, None, id="healthy, no incident: none opened"),
        pytest.param(None, {"metrics": ERRORS}, (False, False, Severity.P2, True), id="opens"),
        pytest.param(
            OPEN,
            {"metrics": ERRORS},
            (True, False, Severity.P2, False),
            id="same severity: nothing new",
        ),
        pytest.param(OPEN, DOWN, (True, False, Severity.P1, True), id="worse: kept, P1"),
        pytest.param(OPEN, {}, (True, True, Severity.P2, True), id="healthy: resolved"),
        pytest.param(RESOLVED, {}, (True, True, Severity.P2, False), id="resolved stays"),
        pytest.param(
            RESOLVED,
            {"metrics": ERRORS},
            (False, False, Severity.P2, False),
            id="a new one opens with its own timeline, never reopens the last",
        ),
    ],
)
def test_incident_rules(
    previous: Incident | None, changes: dict[str, Any],
    expected: tuple[bool, bool, Severity, bool] | None,
) -> None:  # fmt: skip
    a = assess(observe(**changes), ONE_SHOT)
    after = track_incident(previous, a, NOW)
    if expected is None:
        assert after is None
        return
    same, resolved, severity, grew = expected
    assert after is not None
    assert (after.id == (previous.id if previous else None)) is same
    assert (after.resolved_at is not None) is resolved
    assert after.severity is severity
    assert (len(after.timeline) > (len(previous.timeline) if previous else 0)) is grew


@pytest.mark.parametrize(
    ("say", "field"), [(ledger.paged, "pages"), (ledger.held, "held")]
)  # fmt: skip
def test_what_is_said_once_per_incident_is_said_once(
    say: Callable[[VenueServiceStatus, str], VenueServiceStatus | None], field: str
) -> None:
    status = VenueServiceStatus(incident=OPEN)
    first = say(status, "SeverityChanged:P2")
    assert first is not None and getattr(first.incident, field) == ["SeverityChanged:P2"]
    assert say(first, "SeverityChanged:P2") is None  # a restart reads it back: not again
    assert say(first, "SeverityChanged:P1") is not None  # another severity is another page
    assert say(VenueServiceStatus(), "x") is None  # no incident: nothing to say it in


def test_an_escalation_marks_the_incident_once_per_cause() -> None:
    budget = Decision(Action.ESCALATE, "budget used up", "P1", key="budget")
    status, _ = ledger.announced(VenueServiceStatus(incident=OPEN), budget, NOW, "e-1")
    again, _ = ledger.announced(status, budget, NOW, "e-2")
    assert again.incident is not None and again.incident.escalations == ["budget"]
    assert again.incident.escalated


def test_a_template_is_known_good_only_after_bake_time_of_clean_healthy_cycles() -> None:
    """No unknown reading in the bake: a gap restarts it."""
    gap = metrics(p99_latency=Reading.unknown("prometheus down"))
    status = VenueServiceStatus()
    timeline = [HEALTHY_METRICS] * 3 + [gap] + [HEALTHY_METRICS] * 25
    workload = WorkloadState(found=True, desired=3, ready=3, revision=2, template_hash="abc")
    known_at = None
    for i, m in enumerate(timeline):
        at = NOW + timedelta(seconds=15 * i)
        a = assess(observe(metrics=m, workload=workload), SPEC, status.checks)
        status = next_status(a, workload, status, at, 1)
        if status.healthy_templates and known_at is None:
            known_at = i
    # the gap at cycle 3 restarted the 5 min (20 cycles) bake at cycle 4
    assert known_at == 24, known_at


def test_a_known_good_templates_bake_is_over_and_costs_no_writes() -> None:
    """Once known-good, a gap no longer restarts its bake: an unknown cycle and the clean one
    after it write nothing for the rollout (each wrote status while tracked)."""
    gap = metrics(p99_latency=Reading.unknown("prometheus down"))
    workload = WorkloadState(found=True, desired=3, ready=3, revision=2, template_hash="abc")
    status = VenueServiceStatus()
    for i in range(22):  # past the 5 min bake
        a = assess(observe(workload=workload), SPEC, status.checks)
        status = next_status(a, workload, status, NOW + timedelta(seconds=15 * i), 1)
    assert status.healthy_templates == ["abc"] and status.rollout is not None
    baked = status.rollout
    for i, m in enumerate([gap, HEALTHY_METRICS, gap, HEALTHY_METRICS], start=22):
        before = status
        a = assess(observe(metrics=m, workload=workload), SPEC, status.checks)
        status = next_status(a, workload, status, NOW + timedelta(seconds=15 * i), 1)
        assert status.rollout == baked
        assert "rollout" not in write_causes(before, status)
    other = WorkloadState(found=True, desired=3, ready=3, revision=3, template_hash="def")
    a = assess(observe(workload=other), SPEC, status.checks)
    status = next_status(a, other, status, NOW + timedelta(minutes=10), 1)
    assert status.rollout is not None and status.rollout.template_hash == "def"
    assert status.rollout.healthy_since is not None, "a new template bakes from its start"


def test_a_bakes_start_rides_along_and_a_written_starts_end_is_written() -> None:
    """A bake's start alone is no write (every new service and rollout wrote once more, and
    each unknown cycle while baking twice); once a start is stored, a gap's end of it is
    written, so a replica taking over never bakes from a stored start across a gap."""
    gap = metrics(p99_latency=Reading.unknown("prometheus down"))
    workload = WorkloadState(found=True, desired=3, ready=3, revision=2, template_hash="abc")
    first = next_status(assess(observe(workload=workload), SPEC, []), workload,
                        VenueServiceStatus(), NOW, 1)  # fmt: skip
    stored = RolloutRecord(template_hash="abc", revision=2, seen_at=NOW)  # before its bake
    written = first.model_copy(update={"rollout": stored})
    status = next_status(assess(observe(workload=workload), SPEC, written.checks), workload,
                         written, NOW + timedelta(seconds=15), 1)  # fmt: skip
    assert status.rollout is not None and status.rollout.healthy_since is not None
    assert "rollout" not in write_causes(written, status), "a start alone is not written"
    rode = status.model_copy(update={"revision": 3})  # something else worth a write:
    assert write_causes(written, rode) == ["revision"]  # the whole status is stored, start too
    ended = next_status(assess(observe(metrics=gap, workload=workload), SPEC, rode.checks),
                        workload, rode, NOW + timedelta(seconds=30), 1)  # fmt: skip
    assert ended.rollout is not None and ended.rollout.healthy_since is None
    assert "rollout" in write_causes(rode, ended), "a written start's end is written"
    other = ended.model_copy(update={"rollout": ended.rollout.model_copy(
        update={"template_hash": "def", "healthy_since": NOW})})  # fmt: skip
    assert "rollout" in write_causes(ended, other), "a new template is written"


def test_a_template_rolled_back_from_is_never_remembered_as_known_good() -> None:
    """Re-applied by a GitOps sync and healthy for a while, it stays rolled back from only."""
    workload = WorkloadState(found=True, desired=3, ready=3, revision=4, template_hash="bad")
    status = VenueServiceStatus(healthy_templates=["good"], rolled_back_templates=["bad"])
    for i in range(30):  # 7.5 min of clean Healthy cycles: past the 5 min bake
        a = assess(observe(workload=workload), SPEC, status.checks)
        status = next_status(a, workload, status, NOW + timedelta(seconds=15 * i), 1)
    assert status.healthy_templates == ["good"] and status.rolled_back_templates == ["bad"]


def test_status_shows_the_gitops_owner() -> None:
    ref = GitOpsRef("Application", "venue", "argocd")
    workload = WorkloadState(found=True, desired=3, ready=3, revision=2, template_hash="abc",
                             gitops=ref)  # fmt: skip
    a = assess(observe(workload=workload), SPEC, [])
    status = next_status(a, workload, VenueServiceStatus(), NOW, 1)
    assert status.gitops is not None and status.gitops.managed_by is not None
    assert status.gitops.managed_by.model_dump() == {"kind": "Application", "name": "venue",
                                                     "namespace": "argocd"}  # fmt: skip
    assert "gitops" in write_causes(VenueServiceStatus(), status)
