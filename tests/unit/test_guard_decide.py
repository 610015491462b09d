"""The rollout guard's decision (guard/verdict.py) and its writes' plans (act/pause.py,
act/rollback.py with resume), by tables: pure, no cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.test_decide import (
    ERRORS,
    FLUX,
    FRESH_ROLLOUT,
    INCIDENT,
    KNOWN,
    R1,
    R2,
    assessed,
)
from tests.unit.test_decide import NOW as NOW_DECIDE
from venue_operator.act import ActError, pause, rollback
from venue_operator.decide.decision import Action
from venue_operator.decide.procedure import decide
from venue_operator.decide.rollout import RolloutFacts
from venue_operator.guard.judge import Judgement, Verdict
from venue_operator.guard.verdict import decide_guard
from venue_operator.model import keys
from venue_operator.model.observations import Revision
from venue_operator.model.remediation import Mode, RemediationPolicy
from venue_operator.model.status import ActionRecord, ActionResult, VenueServiceStatus

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD, NEW = Revision(1, "good1"), Revision(2, "bad2")
ROLLOUT = RolloutFacts(current=NEW, revisions=(OLD, NEW), started_at=NOW, replicas=10)
KNOWN_GOOD = VenueServiceStatus(healthy_templates=["good1"])
BAD = Judgement(Verdict.BAD, "new 11.8% 5xx over 412 requests vs old 0.2% over 3,950, p < 0.001")


def policy(**changes: Any) -> RemediationPolicy:
    return RemediationPolicy.model_validate(changes)


def rolled_back(minutes_ago: float) -> VenueServiceStatus:
    rec = ActionRecord(at=NOW - timedelta(minutes=minutes_ago), action="RollBack", reason="x",
                       result=ActionResult.SUCCEEDED, correlation_id="r1")  # fmt: skip
    return KNOWN_GOOD.model_copy(update={"history": [rec]})


@pytest.mark.parametrize(
    ("case", "kwargs", "action", "held"),
    [
        ("bad, Auto", {}, Action.ROLL_BACK, None),
        ("stalled", {"judgement": Judgement(Verdict.STALLED, "deadline")}, Action.ROLL_BACK, None),
        ("only suspect", {"judgement": Judgement(Verdict.SUSPECT, "x")}, None, None),
        ("mode Off", {"policy": policy(mode="Off")}, None, "mode-off"),
        ("pause annotation", {"paused": True}, None, "paused"),
        ("rollback disabled", {"policy": policy(rollback={"enabled": False})}, None,
         "rollback-disabled"),
        ("a human paused it", {"rollout": RolloutFacts(**{**ROLLOUT.__dict__, "paused": True})},
         None, "deployment-paused"),
        ("no known-good target", {"status": VenueServiceStatus()}, None, "no-rollback-target"),
    ],
)  # fmt: skip
def test_decision_table(case: str, kwargs: dict[str, Any], action: Action | None,
                        held: str | None) -> None:  # fmt: skip
    args: dict[str, Any] = {"judgement": BAD, "rollout": ROLLOUT, "status": KNOWN_GOOD,
                            "policy": policy(), "now": NOW, **kwargs}  # fmt: skip
    decision = decide_guard(**args)
    assert (decision.action, decision.held) == (action, held), case


def test_the_rollback_pauses_first_and_names_the_comparison() -> None:
    decision = decide_guard(BAD, ROLLOUT, KNOWN_GOOD, policy(), NOW)
    assert decision.params["pauseFirst"] == "true" and decision.params["toTemplate"] == "good1"
    assert BAD.reason in decision.reason and "roll back 2 -> 1" in decision.reason


def test_dry_run_would_pause_and_guardrails_hold() -> None:
    dry = decide_guard(BAD, ROLLOUT, KNOWN_GOOD, policy(mode=Mode.DRY_RUN), NOW)
    assert dry.dry_run and dry.params["would"].startswith("pause the rollout of revision 2")
    cooling = decide_guard(BAD, ROLLOUT, rolled_back(1), policy(), NOW)
    assert cooling.suppressed_by == "cooldown"
    broke = decide_guard(BAD, ROLLOUT, rolled_back(20), policy(maxActionsPerHour=1), NOW)
    assert broke.suppressed_by == "budget"
    ours = RolloutFacts(**{**ROLLOUT.__dict__, "paused": True})
    again = decide_guard(BAD, ours, KNOWN_GOOD, policy(), NOW, paused_by_guard=True)
    assert again.action is Action.ROLL_BACK  # paused by us before a crash: finish it


def deployment(paused: bool = False, by_guard: bool = False, image: str = "v2-bad") -> dict:
    annotations = {keys.PAUSED_BY_GUARD: "rollback-1"} if by_guard else {}
    return {
        "metadata": {"uid": "u1", "resourceVersion": "7", "annotations": annotations},
        "spec": {"paused": paused, "selector": {"matchLabels": {"app": "v"}},
                 "template": {"metadata": {"labels": {"app": "v"}},
                              "spec": {"containers": [{"image": image}]}}},
    }  # fmt: skip


GOOD_RS = {
    "metadata": {"labels": {"app": "v", keys.HASH_LABEL: "good1"},
                 "ownerReferences": [{"uid": "u1", "controller": True}]},
    "spec": {"template": {"metadata": {"labels": {"app": "v", keys.HASH_LABEL: "good1"}},
                          "spec": {"containers": [{"image": "v1"}]}}},
}  # fmt: skip


def test_pause_marks_it_as_ours_and_is_idempotent() -> None:
    ops = pause.plan(deployment(), "rollback-1")
    assert ops is not None and ops[0]["op"] == "test"
    assert {"op": "add", "path": "/spec/paused", "value": True} in ops
    assert ops[2]["value"][keys.PAUSED_BY_GUARD] == "rollback-1"
    assert pause.plan(deployment(paused=True), "rollback-1") is None


def test_rollback_resumes_only_a_rollout_the_guard_paused() -> None:
    ops = rollback.plan(deployment(True, True), [GOOD_RS], "good1", "c", "r", resume=True)
    assert ops is not None
    assert {"op": "replace", "path": "/spec/paused", "value": False} in ops
    annotations = next(o["value"] for o in ops if o["path"] == "/metadata/annotations")
    assert keys.PAUSED_BY_GUARD not in annotations
    with pytest.raises(ActError, match="paused"):  # a human's pause
        rollback.plan(deployment(True, False), [GOOD_RS], "good1", "c", "r", resume=True)
    with pytest.raises(ActError, match="paused"):  # not the guard's call
        rollback.plan(deployment(True, True), [GOOD_RS], "good1", "c", "r")
    # Rolled back before a crash, still paused: the rerun only resumes.
    done = rollback.plan(deployment(True, True, "v1"), [GOOD_RS], "good1", "c", "r", True)
    assert done is not None and [o["path"] for o in done[1:]] == [
        "/spec/paused",
        "/metadata/annotations",
    ]


# Each reason to refuse a rollback, as decide's rule 3 and the guard both meet it.
MIGRATED = Revision(3, "ccc", migration="20261126_drop_seats")
REFUSED = [
    ("rollback disabled", FRESH_ROLLOUT, KNOWN, policy(rollback={"enabled": False}),
     "rollback-disabled"),
    ("a human paused it", replace(FRESH_ROLLOUT, paused=True), KNOWN, policy(),
     "deployment-paused"),
    ("no known-good target", FRESH_ROLLOUT, VenueServiceStatus(incident=INCIDENT), policy(),
     "no-rollback-target"),
    ("across an incompatible migration",
     replace(FRESH_ROLLOUT, current=MIGRATED, revisions=(R1, R2, MIGRATED)), KNOWN, policy(),
     "no-rollback-target"),
    # Flux re-applied the template rolled back from: once more would loop with it.
    ("re-applied by GitOps", replace(FRESH_ROLLOUT, gitops=FLUX),
     KNOWN.model_copy(update={"rolled_back_templates": ["ccc"]}), policy(),
     "reapplied-by-gitops:ccc"),
]  # fmt: skip


@pytest.mark.parametrize(("rollout", "status", "limits", "key"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])  # fmt: skip
def test_decide_and_the_guard_refuse_a_rollback_for_the_same_reasons(
    rollout: RolloutFacts, status: VenueServiceStatus, limits: RemediationPolicy, key: str
) -> None:
    """One list of rollback guardrails (rollback_target.rollback_or_why_not): decide escalates where
    the guard holds, under the same key."""
    escalated = decide(assessed(**ERRORS), rollout, status, limits, NOW_DECIDE)
    assert (escalated.action, escalated.key) == (Action.ESCALATE, key), escalated.reason
    held = decide_guard(BAD, rollout, status, limits, NOW_DECIDE)
    assert (held.action, held.held) == (None, key), held.reason
