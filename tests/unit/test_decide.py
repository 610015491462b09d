"""decide: every rule and guardrail, and the conflicts between rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.builders import ONE_SHOT, SPEC, metrics, observe
from venue_operator.assess.assessment import Assessment, assess
from venue_operator.decide.decision import SPOKEN, Action, spoken
from venue_operator.decide.procedure import decide
from venue_operator.decide.rollback_target import rollback_target
from venue_operator.decide.rollout import RolloutFacts, rollout_facts
from venue_operator.model.observations import (
    GitOpsRef,
    Observations,
    ProbeFailure,
    ProbeResult,
    Reading,
    Revision,
    WorkloadState,
)
from venue_operator.model.reasons import Reason
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    Incident,
    Level,
    Severity,
    VenueServiceStatus,
)

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
POLICY = RemediationPolicy()
R1, R2, R3 = Revision(1, "aaa"), Revision(2, "bbb"), Revision(3, "ccc")
FRESH_ROLLOUT = RolloutFacts(current=R3, revisions=(R1, R2, R3),
                             started_at=NOW - timedelta(minutes=15), replicas=3)  # fmt: skip
OLD_ROLLOUT = RolloutFacts(current=R3, revisions=(R1, R2, R3),
                           started_at=NOW - timedelta(days=2), replicas=3)  # fmt: skip
INCIDENT = Incident(id="i-1", opened_at=NOW - timedelta(minutes=10), severity=Severity.P2)
KNOWN = VenueServiceStatus(healthy_templates=["aaa", "bbb"], incident=INCIDENT)

DB_DOWN = {"full_health": ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503,
                                      checks={"database": "error", "redis": "ok"})}  # fmt: skip
MIGRATIONS = {"full_health": ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503,
                                         checks={"database": "ok", "redis": "ok",
                                                 "migrations": "pending"})}  # fmt: skip
ERRORS = {"metrics": metrics(error_rate=Reading.of(0.12))}
DOWN = {"health": ProbeResult(ProbeFailure.CONNECTION_REFUSED)}
SLOW = {"metrics": metrics(p99_latency=Reading.of(2.6))}
POOL = {"metrics": metrics(pool_utilisation=Reading.of(0.97))}
PENDING = {"metrics": metrics(pool_pending=Reading.of(40))}
SLOW_AND_POOL = {"metrics": metrics(p99_latency=Reading.of(2.6), pool_utilisation=Reading.of(0.97))}
SURGE = {"metrics": metrics(rate_limited=Reading.of(0.3),
                            top_limited_tenants=(("tenant-b", 9.0),))}  # fmt: skip
BLIND = {"metrics": metrics(**{k: Reading.unknown("prometheus down") for k in (
    "request_rate", "error_rate", "p99_latency", "pool_utilisation", "memory_utilisation",
    "rate_limited")})}  # fmt: skip


def assessed(**changes: Any) -> Assessment:
    return assess(observe(**changes), ONE_SHOT)


def record(action: Action, minutes_ago: float, result: ActionResult = ActionResult.SUCCEEDED,
           dry_run: bool = False) -> ActionRecord:  # fmt: skip
    at = NOW - timedelta(minutes=minutes_ago)
    return ActionRecord(at=at, action=action, reason="test", result=result, dry_run=dry_run,
                        correlation_id=f"c-{minutes_ago}")  # fmt: skip


def policy(**changes: Any) -> RemediationPolicy:
    return RemediationPolicy.model_validate(changes)


# (id, observation, rollout, status, policy, expected action, expected params subset)
RULES = [
    ("healthy: nothing", {}, FRESH_ROLLOUT, KNOWN, POLICY, None, {}),
    ("bad rollout -> roll back to last healthy", ERRORS, FRESH_ROLLOUT, KNOWN, POLICY,
     Action.ROLL_BACK, {"fromRevision": "3", "toRevision": "2", "toTemplate": "bbb"}),
    ("bad rollout, service down -> roll back", DOWN, FRESH_ROLLOUT, KNOWN, POLICY,
     Action.ROLL_BACK, {"toRevision": "2"}),
    ("skip a revision rolled back from", ERRORS, FRESH_ROLLOUT,
     KNOWN.model_copy(update={"rolled_back_templates": ["bbb"]}), POLICY,
     Action.ROLL_BACK, {"toRevision": "1"}),
    ("no known-healthy revision -> escalate", ERRORS, FRESH_ROLLOUT,
     VenueServiceStatus(incident=INCIDENT), POLICY, Action.ESCALATE, {}),
    ("rollback disabled -> escalate", ERRORS, FRESH_ROLLOUT, KNOWN,
     policy(rollback={"enabled": False}), Action.ESCALATE, {}),
    ("paused Deployment -> escalate, no rollback", ERRORS,
     RolloutFacts(current=R3, revisions=(R1, R2, R3), started_at=FRESH_ROLLOUT.started_at,
                  replicas=3, paused=True), KNOWN, POLICY, Action.ESCALATE, {}),
    ("old rollout + latency -> scale up", SLOW, OLD_ROLLOUT, KNOWN, POLICY,
     Action.SCALE_UP, {"fromReplicas": "3", "toReplicas": "4"}),
    # #21: pool exhaustion is the runbook's Database Connection Failures, not capacity...
    ("old rollout + pool -> escalate", POOL, OLD_ROLLOUT, KNOWN, POLICY, Action.ESCALATE, {}),
    ("pending connections -> escalate", PENDING, OLD_ROLLOUT, KNOWN, POLICY, Action.ESCALATE,
     {}),
    ("slow p99 + saturated pool -> escalate", SLOW_AND_POOL, OLD_ROLLOUT, KNOWN, POLICY,
     Action.ESCALATE, {}),
    # ...unless the spec says to scale on it; a slow p99 with pool headroom is capacity
    ("pool + onPoolSaturation -> scale up", POOL, OLD_ROLLOUT, KNOWN,
     policy(scale={"on_pool_saturation": True}), Action.SCALE_UP, {}),
    ("slow p99, pool headroom -> scale up", SLOW, OLD_ROLLOUT, KNOWN, POLICY, Action.SCALE_UP,
     {}),
    ("scale never above max -> escalate", SLOW,
     RolloutFacts(current=R3, revisions=(R3,), started_at=NOW - timedelta(days=2), replicas=10),
     KNOWN, POLICY, Action.ESCALATE, {}),
    ("scale step bounded by max", SLOW,
     RolloutFacts(current=R3, revisions=(R3,), started_at=NOW - timedelta(days=2), replicas=9),
     KNOWN, policy(scale={"step": 5}), Action.SCALE_UP, {"toReplicas": "10"}),
    ("old rollout + error rate -> escalate (nothing automatable)", ERRORS, OLD_ROLLOUT, KNOWN,
     POLICY, Action.ESCALATE, {}),
    ("database down -> open breaker", DB_DOWN, FRESH_ROLLOUT, KNOWN, POLICY,
     Action.OPEN_CIRCUIT, {"dependencies": "database"}),
    ("bad rollout while database down -> breaker, not rollback", {**DB_DOWN, **ERRORS},
     FRESH_ROLLOUT, KNOWN, POLICY, Action.OPEN_CIRCUIT, {}),
    ("breaker open, database still down -> nothing (no scale into it)", {**DB_DOWN, **SLOW},
     OLD_ROLLOUT, KNOWN.model_copy(update={"circuit_open": True}), POLICY, None, {}),
    ("database back -> close breaker", {}, OLD_ROLLOUT,
     KNOWN.model_copy(update={"circuit_open": True}), POLICY, Action.CLOSE_CIRCUIT, {}),
    ("migrations pending -> migration job", MIGRATIONS, OLD_ROLLOUT, KNOWN, POLICY,
     Action.RUN_MIGRATION, {"cronJob": "venue-migrate"}),
    ("migration already running -> wait", MIGRATIONS,
     RolloutFacts(current=R3, revisions=(R3,), replicas=3, migration_running=True),
     KNOWN, POLICY, None, {}),
    ("429 surge -> diagnosis naming tenants", SURGE, OLD_ROLLOUT, KNOWN, POLICY,
     Action.DIAGNOSE_RATE_LIMIT, {}),
    ("unknown data -> nothing", BLIND, FRESH_ROLLOUT, KNOWN, POLICY, None, {}),
    ("mode Off -> nothing", ERRORS, FRESH_ROLLOUT, KNOWN, policy(mode="Off"), None, {}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "obs", "rollout", "status", "pol", "action", "params"),
                         RULES, ids=[r[0] for r in RULES])  # fmt: skip
def test_rules(
    case: str, obs: dict[str, Any], rollout: RolloutFacts, status: VenueServiceStatus,
    pol: RemediationPolicy, action: Action | None, params: dict[str, str],
) -> None:  # fmt: skip
    decision = decide(assessed(**obs), rollout, status, pol, NOW)
    assert decision.action is action, decision.reason
    assert decision.suppressed_by is None
    assert params.items() <= dict(decision.params).items()
    assert decision.reason


def test_pool_exhaustion_escalates_with_the_runbooks_database_steps() -> None:
    decision = decide(assessed(**POOL), OLD_ROLLOUT, KNOWN, POLICY, NOW)
    assert decision.section == "Database Connection Failures" and decision.key == "pool-exhausted"
    for step in ("PgBouncer", "connection limits", "connection leaks", "not scaling"):
        assert step in decision.reason


def test_reason_names_the_numbers_and_the_section() -> None:
    decision = decide(assessed(**ERRORS), FRESH_ROLLOUT, KNOWN, POLICY, NOW)
    assert decision.section == "Rollback Procedure"
    assert "error_rate 12% > 5%" in decision.reason and "3 -> 2" in decision.reason


def test_429_diagnosis_names_the_tenant() -> None:
    decision = decide(assessed(**SURGE), OLD_ROLLOUT, KNOWN, POLICY, NOW)
    assert "tenant-b" in decision.reason and decision.section == "Rate Limit Errors"


def test_dry_run_decides_the_same_but_flags_it() -> None:
    decision = decide(assessed(**ERRORS), FRESH_ROLLOUT, KNOWN, policy(mode="DryRun"), NOW)
    assert (
        decision.action is Action.ROLL_BACK and decision.dry_run and decision.suppressed_by is None
    )


def test_pause_annotation_stops_everything() -> None:
    decision = decide(assessed(**DB_DOWN), FRESH_ROLLOUT, KNOWN, POLICY, NOW, paused=True)
    assert decision.action is None and "paused" in decision.reason


def test_degradation_before_the_rollout_is_not_blamed_on_it() -> None:
    before = KNOWN.model_copy(update={"incident": INCIDENT.model_copy(
        update={"opened_at": NOW - timedelta(minutes=30)})})  # fmt: skip
    decision = decide(assessed(**SLOW), FRESH_ROLLOUT, before, POLICY, NOW)
    assert decision.action is Action.SCALE_UP


def with_history(*records: ActionRecord, **changes: Any) -> VenueServiceStatus:
    return KNOWN.model_copy(update={"history": list(records), **changes})


def test_cooldown_holds_a_second_scale_in_a_new_incident() -> None:
    """Flapping: recovered after a scale-up, degraded again a minute later."""
    status = with_history(record(Action.SCALE_UP, 2))
    status = status.model_copy(update={"incident": INCIDENT.model_copy(
        update={"opened_at": NOW - timedelta(minutes=1)})})  # fmt: skip
    decision = decide(assessed(**SLOW), OLD_ROLLOUT, status, POLICY, NOW)
    assert decision.action is Action.SCALE_UP and decision.suppressed_by == "cooldown"
    assert "cooldown" in decision.reason


def test_a_second_database_outage_opens_the_breaker_at_once() -> None:
    """#21: opened and closed within the last minute, the database down again: no cooldown
    holds the breaker open (it was 32 s in the lab)."""
    status = with_history(record(Action.OPEN_CIRCUIT, 0.8), record(Action.CLOSE_CIRCUIT, 0.3))
    decision = decide(assessed(**DB_DOWN), OLD_ROLLOUT, status, POLICY, NOW)
    assert decision.action is Action.OPEN_CIRCUIT and decision.suppressed_by is None


@pytest.mark.parametrize(("closed_minutes_ago", "held"), [(0.5, True), (1.5, False)])
def test_a_second_close_waits_out_the_cooldown_after_the_first(
    closed_minutes_ago: float, held: bool
) -> None:
    """What keeps it from flapping: closes at most once per cooldowns.circuitBreaker (1m);
    a first close is never held (a short outage is not made longer)."""
    history = [record(Action.OPEN_CIRCUIT, 2), record(Action.CLOSE_CIRCUIT, closed_minutes_ago),
               record(Action.OPEN_CIRCUIT, 0.2)]  # fmt: skip
    status = with_history(*history, circuit_open=True)
    decision = decide(assessed(), OLD_ROLLOUT, status, POLICY, NOW)
    assert decision.action is Action.CLOSE_CIRCUIT
    assert (decision.suppressed_by == "cooldown") is held
    just_opened = with_history(record(Action.OPEN_CIRCUIT, 0.1), circuit_open=True)
    first = decide(assessed(), OLD_ROLLOUT, just_opened, POLICY, NOW)
    assert first.action is Action.CLOSE_CIRCUIT and first.suppressed_by is None


def test_budget_used_up_escalates_once_then_holds_quietly() -> None:
    """#10 case 3: running out of maxActionsPerHour is never silent."""
    old = [record(Action.SCALE_UP, m) for m in (50, 40, 30)]
    status = with_history(*old)
    tight = policy(max_actions_per_hour=3, cooldowns={"scale": "1s"})
    decision = decide(assessed(**SLOW), OLD_ROLLOUT, status, tight, NOW)
    assert decision.action is Action.ESCALATE and decision.key == "budget"
    assert "budget of 3 actions/hour used (next at 20:10:00)" in decision.reason
    assert decision.params == {"held": "ScaleUp", "heldBy": "budget"}
    said = status.model_copy(update={"incident": INCIDENT.model_copy(
        update={"escalations": ["budget"]})})  # fmt: skip
    again = decide(assessed(**SLOW), OLD_ROLLOUT, said, tight, NOW)
    assert again.action is Action.SCALE_UP and again.suppressed_by == "budget"


def test_budget_counts_only_the_last_hour() -> None:
    status = with_history(*[record(Action.SCALE_UP, m) for m in (70, 65, 61)])
    decision = decide(assessed(**SLOW), OLD_ROLLOUT, status,
                      policy(max_actions_per_hour=3, cooldowns={"scale": "1s"}), NOW)  # fmt: skip
    assert decision.suppressed_by is None


def test_verify_window_waits_then_escalates_once() -> None:
    acted = record(Action.ROLL_BACK, 2)
    waiting = decide(assessed(**ERRORS), FRESH_ROLLOUT, with_history(acted), POLICY, NOW)
    assert waiting.action is None and "verifying rollback (" in waiting.reason  # in words
    late = record(Action.ROLL_BACK, 6)
    escalate = decide(assessed(**ERRORS), FRESH_ROLLOUT, with_history(late), POLICY, NOW)
    assert escalate.action is Action.ESCALATE and "rollback at " in escalate.reason
    assert "did not restore health" in escalate.reason
    assert escalate.key == f"verify:{late.correlation_id}"
    said = INCIDENT.model_copy(update={"escalated": True, "escalations": [escalate.key]})
    after = decide(assessed(**ERRORS), FRESH_ROLLOUT, with_history(late, incident=said), POLICY,
                   NOW)  # fmt: skip
    assert after.action is None, "no chained actions after an escalation"
    assert after.held == "escalated"


def test_actions_of_a_previous_incident_do_not_count_for_verification() -> None:
    earlier = record(Action.ROLL_BACK, 20)
    decision = decide(assessed(**ERRORS), FRESH_ROLLOUT, with_history(earlier), POLICY, NOW)
    assert decision.action is Action.ROLL_BACK


def test_never_roll_back_across_a_migration_unless_backward_compatible() -> None:
    migrating = Revision(3, "ccc", migration="0042_add_venue_capacity")
    rollout = RolloutFacts(current=migrating, revisions=(R1, R2, migrating),
                           started_at=FRESH_ROLLOUT.started_at, replicas=3)  # fmt: skip
    blocked = decide(assessed(**ERRORS), rollout, KNOWN, POLICY, NOW)
    assert blocked.action is Action.ESCALATE and "0042_add_venue_capacity" in blocked.reason
    compatible = Revision(3, "ccc", migration="0042_add_venue_capacity", backward_compatible=True)
    target, _ = rollback_target(replace_current(rollout, compatible), ["aaa", "bbb"], [])
    assert target == R2


def replace_current(rollout: RolloutFacts, current: Revision) -> RolloutFacts:
    return RolloutFacts(current=current, revisions=(R1, R2, current),
                        started_at=rollout.started_at, replicas=rollout.replicas)  # fmt: skip


def test_scale_steps_again_after_the_window_then_escalates_at_max() -> None:
    late = record(Action.SCALE_UP, 6)
    again = decide(assessed(**SLOW), OLD_ROLLOUT, with_history(late),
                   policy(cooldowns={"scale": "1m"}), NOW)  # fmt: skip
    assert again.action is Action.SCALE_UP and again.suppressed_by is None
    at_max = RolloutFacts(current=R3, revisions=(R3,), started_at=OLD_ROLLOUT.started_at,
                          replicas=10)  # fmt: skip
    final = decide(assessed(**SLOW), at_max, with_history(late), POLICY, NOW)
    assert final.action is Action.ESCALATE and "maxReplicas" in final.reason


def confirmed_then(first: Observations, then: Observations) -> Assessment:
    """`first` confirmed at once, then `then` observed under the default confirmation."""
    return assess(then, SPEC, assess(first, ONE_SHOT).checks)


def test_no_action_on_a_level_held_only_by_hysteresis() -> None:
    """Fault gone this cycle (observed ok) but still confirmed critical: do not scale."""
    recovering = confirmed_then(observe(**SLOW), observe())
    assert recovering.check("p99_latency").level is Level.CRITICAL
    decision = decide(recovering, OLD_ROLLOUT, KNOWN, POLICY, NOW)
    assert decision.action is None


def test_a_confirmed_critical_dipping_to_warning_is_still_acted_on() -> None:
    """Still in breach (warning this cycle): the fault is not gone, the scale-up goes ahead."""
    dipped = confirmed_then(observe(**SLOW), observe(metrics=metrics(p99_latency=Reading.of(0.8))))
    assert dipped.check("p99_latency").observed is Level.WARNING
    assert decide(dipped, OLD_ROLLOUT, KNOWN, POLICY, NOW).action is Action.SCALE_UP


def test_breaker_open_holds_everything_until_dependencies_are_confirmed_back() -> None:
    back = confirmed_then(observe(**DB_DOWN), observe(**SLOW))  # db ok now, latency bad
    status = KNOWN.model_copy(update={"circuit_open": True})
    decision = decide(back, OLD_ROLLOUT, status, POLICY, NOW)
    assert decision.action is None and "circuit open" in decision.reason


def test_after_a_dependency_outage_lagging_errors_are_not_blamed_on_the_rollout() -> None:
    opened = record(Action.OPEN_CIRCUIT, 2)
    closed = record(Action.CLOSE_CIRCUIT, 1)
    decision = decide(assessed(**ERRORS), FRESH_ROLLOUT, with_history(opened, closed), POLICY, NOW)
    assert decision.action is None and decision.held == "dependency-echo:ccc" and decision.pages
    assert "apply again at 20:01:00 (120s echo window" in decision.reason
    # #21: the release that waits is named: which revision fails, and what is held
    assert decision.reason.startswith(
        "error_rate 12% > 5% after the rollout of revision 3: "
        "roll back 3 -> 2; held: recovering from a dependency"
    )


def test_the_echo_window_names_no_release_when_none_is_to_blame() -> None:
    opened = record(Action.OPEN_CIRCUIT, 2)
    closed = record(Action.CLOSE_CIRCUIT, 1)
    decision = decide(assessed(**ERRORS), OLD_ROLLOUT, with_history(opened, closed), POLICY, NOW)
    assert decision.action is None and decision.held == "dependency-echo" and not decision.pages
    assert decision.reason.startswith("recovering from a dependency outage")


@pytest.mark.parametrize(
    ("rollout_minutes_ago", "closed_minutes_ago", "action"),
    [
        (15, 1, None),  # the echo window (2 min) is not over: still the outage's echo
        (15, 3, Action.ROLL_BACK),  # over, still critical: the rollout (before it) is blamed
        (5, 3, Action.ROLL_BACK),  # the rollout came during the outage: blamed too
        (1, 4, Action.ESCALATE),  # the rollout came after the echo ended: not its cause
    ],
)
def test_after_the_echo_window_the_usual_rules_apply_again(
    rollout_minutes_ago: int, closed_minutes_ago: int, action: Action | None
) -> None:
    """#10 case 7: an outage overlapping a bad rollout must not silence the operator."""
    opened, closed = (
        record(Action.OPEN_CIRCUIT, 8),
        record(Action.CLOSE_CIRCUIT, closed_minutes_ago),
    )
    started = NOW - timedelta(minutes=rollout_minutes_ago)
    rollout = RolloutFacts(current=R3, revisions=(R1, R2, R3), started_at=started, replicas=3)
    decision = decide(assessed(**ERRORS), rollout, with_history(opened, closed), POLICY, NOW)
    assert decision.action is action, decision.reason


def test_a_first_release_is_not_a_rollout_to_blame() -> None:
    first = RolloutFacts(current=R1, revisions=(R1,), started_at=NOW - timedelta(minutes=1),
                         replicas=3)  # fmt: skip
    decision = decide(assessed(**ERRORS), first, KNOWN, POLICY, NOW)
    assert decision.action is Action.ESCALATE and "after the rollout" not in decision.reason


def test_a_failed_attempt_counts_for_the_cooldown() -> None:
    failed = record(Action.RUN_MIGRATION, 1, ActionResult.FAILED)
    decision = decide(assessed(**MIGRATIONS), OLD_ROLLOUT, with_history(failed), POLICY, NOW)
    assert decision.action is Action.RUN_MIGRATION and decision.suppressed_by == "cooldown"


def test_a_rollback_of_ours_is_not_a_rollout_to_blame() -> None:
    from venue_operator.decide.rollout import rollout_facts

    ours = record(Action.ROLL_BACK, 3).model_copy(update={"inputs": {"toTemplate": "bbb"}})
    workload = WorkloadState(found=True, desired=3, ready=3, revision=4, template_hash="bbb",
                             revisions=(R1, Revision(4, "bbb"), R3),
                             rollout_started_at=NOW - timedelta(minutes=3))  # fmt: skip
    facts = rollout_facts(workload, with_history(ours))
    assert facts.started_at is None
    assert rollout_facts(workload, KNOWN).started_at == NOW - timedelta(minutes=3)


@pytest.mark.parametrize(
    ("taken_at", "now_obs", "escalates"),
    [
        ("P2", SLOW, False),  # same severity as when it scaled: the cooldown only waits
        ("P2", {"health": ProbeResult(ProbeFailure.CONNECTION_REFUSED), **SLOW}, True),  # P1
        (None, {"health": ProbeResult(ProbeFailure.CONNECTION_REFUSED), **SLOW}, False),
    ],
)
def test_a_cooldown_under_a_worsening_incident_escalates_once(
    taken_at: str | None, now_obs: dict[str, Any], escalates: bool
) -> None:
    """#10: the cooldown holds a second scale-up; worse than when the first was taken, a
    human is told (once per severity), otherwise the cooldown just waits."""
    scaled = record(Action.SCALE_UP, 1)
    if taken_at:
        scaled = scaled.model_copy(update={"inputs": {"severity": taken_at}})
    verified = policy(verify_window="30s")  # verified, still bad: the 5 min cooldown holds
    decision = decide(assessed(**now_obs), OLD_ROLLOUT, with_history(scaled), verified, NOW)
    if not escalates:
        assert decision.suppressed_by == "cooldown", decision.reason
        return
    assert decision.action is Action.ESCALATE and decision.key == "cooldown:ScaleUp:P1"
    said = with_history(scaled, incident=INCIDENT.model_copy(
        update={"escalations": [decision.key]}))  # fmt: skip
    again = decide(assessed(**now_obs), OLD_ROLLOUT, said, verified, NOW)
    assert again.suppressed_by == "cooldown"  # said once; the cooldown holds quietly


# --- the GitOps loop guard: a template rolled back from, re-applied by Flux or Argo CD --------

FLUX = GitOpsRef("Kustomization", "apps", "flux-system")
R4 = Revision(4, "ccc")  # revision 3's template again: a rollout, as Flux would apply it
REAPPLIED = RolloutFacts(current=R4, revisions=(R1, R2, R4), started_at=FRESH_ROLLOUT.started_at,
                         replicas=3, gitops=FLUX)  # fmt: skip
ROLLED_BACK_CCC = KNOWN.model_copy(update={"rolled_back_templates": ["ccc"]})
GUARD_KEY = "reapplied-by-gitops:ccc"

# (id, observation, rollout, status, expected action, escalation key or None)
LOOP_GUARD = [
    ("GitOps re-applied a template rolled back from -> escalate, no rollback", ERRORS, REAPPLIED,
     ROLLED_BACK_CCC, Action.ESCALATE, GUARD_KEY),
    ("escalated once per incident, then held", ERRORS, REAPPLIED,
     ROLLED_BACK_CCC.model_copy(update={"incident": INCIDENT.model_copy(
         update={"escalations": [GUARD_KEY]})}), None, None),
    ("a new bad template from GitOps is rolled back as usual", ERRORS,
     replace(REAPPLIED, current=Revision(4, "ddd"), revisions=(R1, R2, Revision(4, "ddd"))),
     ROLLED_BACK_CCC, Action.ROLL_BACK, None),
    ("never rolled back from: rolled back as usual", ERRORS, REAPPLIED, KNOWN, Action.ROLL_BACK,
     None),
    ("re-applied inside the rollback's verify window -> escalate, not wait", ERRORS, REAPPLIED,
     ROLLED_BACK_CCC.model_copy(update={"history": [record(Action.ROLL_BACK, 1)]}),
     Action.ESCALATE, GUARD_KEY),
    ("re-applied but not critical -> nothing", {}, REAPPLIED, ROLLED_BACK_CCC, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("obs", "rollout", "status", "action", "key"),
                         [c[1:] for c in LOOP_GUARD], ids=[c[0] for c in LOOP_GUARD])  # fmt: skip
def test_loop_guard(
    obs: dict[str, Any], rollout: RolloutFacts, status: VenueServiceStatus,
    action: Action | None, key: str | None,
) -> None:  # fmt: skip
    decision = decide(assessed(**obs), rollout, status, POLICY, NOW)
    assert decision.action is action, decision.reason
    assert decision.key == key
    # Said as ReappliedByGitOps, not the usual Escalated (remediate posts this reason).
    assert decision.event_reason is (Reason.REAPPLIED_BY_GITOPS if key else None)
    if key is not None:
        assert "Kustomization flux-system/apps re-applied pod template ccc" in decision.reason
        assert decision.params["gitops"] == "Kustomization flux-system/apps"


@pytest.mark.parametrize(
    ("writer", "named"),
    [("kubectl-client-side-apply", "field manager kubectl-client-side-apply"),
     (None, "a writer the Deployment's managedFields do not name")],
)  # fmt: skip
def test_any_writer_re_applying_a_template_rolled_back_from_is_escalated_once_by_name(
    writer: str | None, named: str
) -> None:
    """#22 item 3: without GitOps metadata (a `kubectl apply` loop, a pipeline) the template
    rolled back from is not rolled back again: one escalation names who applied it."""
    # our rollback to bbb went through (its mark is on the Deployment), and ccc is current
    rollout = replace(REAPPLIED, gitops=None, template_writer=writer, deployment="venue",
                      rolled_back_to="bbb")  # fmt: skip
    ours = record(Action.ROLL_BACK, 5).model_copy(update={"inputs": {"fromTemplate": "ccc"}})
    came_back = ROLLED_BACK_CCC.model_copy(update={"history": [ours]})
    decision = decide(assessed(**ERRORS), rollout, came_back, POLICY, NOW)
    assert decision.action is Action.ESCALATE and decision.key == "reapplied:ccc"
    assert decision.event_reason is Reason.TEMPLATE_REAPPLIED
    assert f"{named} applied pod template ccc again, which was rolled back from" in decision.reason
    assert "kubectl rollout undo deployment/venue" in decision.reason
    said = came_back.model_copy(update={"incident": INCIDENT.model_copy(
        update={"escalations": [decision.key]})})  # fmt: skip
    again = decide(assessed(**ERRORS), rollout, said, POLICY, NOW)
    assert again.action is None  # said once; never a rollback
    # A template that never left is no re-apply: our rollback was refused, or the watch has
    # not caught up with it yet (no mark seen)
    refused = ours.model_copy(update={"result": ActionResult.FAILED})
    never_left = came_back.model_copy(update={"history": [refused]})
    assert decide(assessed(**ERRORS), rollout, never_left, POLICY, NOW).key != "reapplied:ccc"
    lagging = replace(rollout, rolled_back_to=None)
    assert decide(assessed(**ERRORS), lagging, came_back, POLICY, NOW).key != "reapplied:ccc"


def test_the_template_writer_is_the_newest_manager_of_the_pod_template() -> None:
    from venue_operator.observe.cluster import template_writer

    managed = [
        {"manager": "kubectl-client-side-apply", "operation": "Update",
         "time": "2026-12-06T10:00:00Z", "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "venue-operator", "operation": "Update", "time": "2026-12-06T10:01:00Z",
         "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "kubectl-set", "operation": "Update", "time": "2026-12-06T10:02:00Z",
         "fieldsV1": {"f:spec": {"f:replicas": {}}}},  # not the template
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "time": "2026-12-06T10:03:00Z", "fieldsV1": {"f:status": {}}},
        {"manager": "ci-pipeline", "operation": "Apply", "time": "2026-12-06T10:04:00Z",
         "fieldsV1": {"f:spec": {"f:template": {"f:spec": {}}}}},
    ]  # fmt: skip
    assert template_writer(managed) == "ci-pipeline"
    assert template_writer(managed[:3]) == "venue-operator"
    assert template_writer([]) is None


def test_rollout_facts_carry_the_gitops_owner() -> None:
    workload = WorkloadState(found=True, revision=4, template_hash="ccc",
                             revisions=(Revision(4, "ccc"),), gitops=FLUX)  # fmt: skip
    assert rollout_facts(workload, KNOWN).gitops == FLUX


def test_every_action_has_words_for_people() -> None:
    assert set(SPOKEN) == set(Action)
    assert spoken("RollBack") == "rollback" and spoken("Unheard") == "Unheard"
