"""What an incident keeps as data for its post-mortem: the checks that breached (worst
level, highest value), the rollout it opened under (revision, image, start), its actions
with their results, and impact figures rounded where they are written. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.unit.builders import NOW, SPEC, metrics, observe
from venue_operator.assess.assessment import assess
from venue_operator.decide.decision import Action, Decision
from venue_operator.incident import breaches
from venue_operator.loop.evaluation import judge
from venue_operator.model.observations import Reading, Revision, TenantRate, WorkloadState
from venue_operator.model.status import (
    ActionResult,
    Incident,
    Level,
    RolloutRecord,
    Severity,
    VenueServiceStatus,
)
from venue_operator.observe.cluster import replicaset_summary
from venue_operator.record import ledger
from venue_operator.record.write_causes import write_causes

OLD, BAD = "registry.example/venue:2.3.9", "registry.example/venue:2.4.0"
WORKLOAD = WorkloadState(
    found=True, desired=3, ready=3, revision=2, template_hash="bbb",
    revisions=(Revision(1, "aaa", image=OLD), Revision(2, "bbb", image=f"{BAD}, envoy:1.29")),
    rollout_started_at=NOW - timedelta(minutes=1),
)  # fmt: skip


def drive(shares: list[float]) -> list[VenueServiceStatus]:
    """Cycles of 15 s through judge (assess + record + impact), as the loop runs them."""
    status, out = VenueServiceStatus(), []
    for i, share in enumerate(shares):
        m = replace(metrics(request_rate=Reading.of(20), error_rate=Reading.of(share)),
                    tenants=(TenantRate("tenant-b", 5, 5 * share * 3.3),))  # fmt: skip
        obs = observe(metrics=m, workload=WORKLOAD, at=NOW + timedelta(seconds=15 * i))
        status = judge(obs, SPEC, status, 1).status
        out.append(status)
    return out


def test_each_breached_check_is_kept_at_its_worst_level_and_highest_value() -> None:
    statuses = drive([0.001, 0.02, 0.02, 0.02, 0.09, 0.12, 0.08, 0.03, 0.001])
    incident = statuses[-1].incident
    assert incident is not None
    (breach,) = incident.breaches
    assert (breach.name, breach.level, breach.value, breach.unit, breach.limit) == (
        "error_rate", Level.CRITICAL, 12, "%", 5)  # fmt: skip
    assert breach.section == "Monitoring & Alerts"
    first = next(s for s in statuses if s.incident is not None).incident
    assert first is not None and breach.at == first.opened_at  # first breached, not worst


def test_a_higher_peak_alone_is_not_worth_a_status_write() -> None:
    before = drive([0.001, 0.09, 0.09, 0.09])[-1]
    assert before.incident is not None
    (breach,) = before.incident.breaches
    higher = before.incident.model_copy(
        update={"breaches": [breach.model_copy(update={"value": 12.0})]}
    )
    assert write_causes(before, before.model_copy(update={"incident": higher})) == []
    worse = breach.model_copy(update={"name": "p99_latency"})
    more = before.incident.model_copy(update={"breaches": [breach, worse]})
    assert write_causes(before, before.model_copy(update={"incident": more})) == ["incident"]


def test_the_incident_names_the_rollout_it_opened_under() -> None:
    incident = next(s.incident for s in drive([0.001, 0.09, 0.09, 0.09]) if s.incident)
    assert incident is not None and incident.rollout is not None
    r = incident.rollout
    assert (r.revision, r.template_hash, r.image) == (2, "bbb", f"{BAD}, envoy:1.29")
    assert r.started_at == NOW - timedelta(minutes=1)  # the ReplicaSet's, first seen at start


def test_a_rollback_in_the_incident_leaves_the_rollout_it_opened_under() -> None:
    status = next(s for s in drive([0.001, 0.09, 0.09, 0.09]) if s.incident)
    opened = status.incident
    assert opened is not None and opened.rollout is not None
    revisions = (Revision(3, "aaa", image=OLD), *WORKLOAD.revisions[1:])
    rolled_back = replace(WORKLOAD, revision=3, template_hash="aaa", revisions=revisions)
    bad = metrics(request_rate=Reading.of(20), error_rate=Reading.of(0.09))
    obs = observe(metrics=bad, workload=rolled_back, at=NOW + timedelta(minutes=2))
    after = judge(obs, SPEC, status, 1).status.incident
    assert after is not None and after.id == opened.id and after.resolved_at is None
    assert after.rollout == opened.rollout and after.rollout.image is not None
    assert BAD in after.rollout.image


def test_the_rollout_began_when_its_replicaset_was_made_unless_that_was_reused() -> None:
    created = WORKLOAD.rollout_started_at
    assert created is not None
    seen = RolloutRecord(template_hash="bbb", revision=2, seen_at=created + timedelta(seconds=2))
    running = breaches.rollout_running(WORKLOAD, seen)  # the operator saw it a cycle late
    assert running is not None and running.started_at == created
    reused = seen.model_copy(update={"seen_at": created + timedelta(hours=3)})  # an old RS
    running = breaches.rollout_running(WORKLOAD, reused)
    assert running is not None and running.started_at == reused.seen_at
    other = seen.model_copy(update={"template_hash": "aaa"})  # an older record: not this one
    running = breaches.rollout_running(WORKLOAD, other)
    assert running is not None and running.started_at == created
    assert breaches.rollout_running(WorkloadState(found=False), seen) is None


def test_a_replicaset_names_its_containers_images() -> None:
    containers = [{"name": "venue", "image": BAD}, {"name": "envoy", "image": "envoy:1.29"}]
    body = {"metadata": {"name": "rs", "labels": {"pod-template-hash": "bbb"}},
            "spec": {"template": {"spec": {"containers": containers}}}}  # fmt: skip
    assert replicaset_summary(body)["image"] == f"{BAD}, envoy:1.29"
    assert replicaset_summary({"metadata": {}})["image"] is None


def test_an_action_entry_says_it_in_words_and_keeps_it_as_data() -> None:
    status = VenueServiceStatus(incident=Incident(id="i", opened_at=NOW, severity=Severity.P2))
    decision = Decision(Action.ROLL_BACK, "error_rate 19% > 5%: roll back 2 -> 1", "Rollback")
    status, rec = ledger.started(status, decision, NOW, "r")
    status = ledger.succeeded(status, rec)
    assert status.incident is not None
    (entry,) = status.incident.timeline
    assert entry.message == "rollback succeeded: error_rate 19% > 5%: roll back 2 -> 1"
    assert (entry.action, entry.result) == ("RollBack", ActionResult.SUCCEEDED)


def test_impact_figures_are_rounded_where_they_are_written() -> None:
    incident = drive([0.001] + [0.0937] * 6)[-1].incident
    assert incident is not None and incident.impact is not None
    impact = incident.impact
    tenants = [n for t in impact.top_tenants for n in (t.failed_requests, t.error_percent)]
    numbers = [impact.failed_requests, impact.request_rate, impact.failing_rate, *tenants]
    for number in numbers:
        assert number is not None and len(repr(number)) <= 6, impact  # 133.7, 28.2, 1.87


def test_old_status_without_the_new_fields_still_loads() -> None:
    old = {"incident": {"id": "i", "openedAt": "2026-11-27T10:00:00Z", "severity": "P2",
                        "timeline": [{"at": "2026-11-27T10:00:00Z", "severity": "P2",
                                      "message": "RollBack Succeeded: x"}]}}  # fmt: skip
    status = VenueServiceStatus.model_validate(old)
    assert status.incident is not None and status.incident.breaches == []
    assert status.incident.rollout is None and status.incident.timeline[0].action is None
    assert assess(observe(), SPEC, status.checks).health  # and the loop goes on with it
