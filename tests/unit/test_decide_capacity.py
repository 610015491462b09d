"""decide with an HPA, a ScaledObject and capacity to give back (decide/capacity.py's rules in the
loop of decisions: who is written, when it escalates, and how restores meet the other rules)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.unit.test_decide import (
    INCIDENT,
    NOW,
    OLD_ROLLOUT,
    R3,
    SLOW,
    assessed,
    policy,
    record,
)
from venue_operator.decide.decision import Action
from venue_operator.decide.procedure import decide
from venue_operator.decide.rollout import RolloutFacts
from venue_operator.model.observations import Scaler
from venue_operator.model.remediation import Mode
from venue_operator.model.status import (
    CapacityLoan,
    Incident,
    ScaledKind,
    Severity,
    VenueServiceStatus,
)

HPA = Scaler(hpa="venue-hpa", min_replicas=2, max_replicas=10)
KEDA = Scaler(hpa="keda-hpa-venue", min_replicas=2, max_replicas=10, scaled_object="venue-so",
              scaled_object_min=2, scaled_object_max=10)  # fmt: skip


def rollout(replicas: int = 2, **changes: Any) -> RolloutFacts:
    return RolloutFacts(current=R3, revisions=(R3,), started_at=OLD_ROLLOUT.started_at,
                        replicas=replicas, deployment="venue-service", **changes)  # fmt: skip


RESOLVED = Incident(id="i", opened_at=NOW - timedelta(hours=1), severity=Severity.P2,
                    resolved_at=NOW - timedelta(minutes=40))  # fmt: skip
LENT = CapacityLoan(kind=ScaledKind.HPA, name="venue-hpa", field="spec.minReplicas", original=2,
                    written=4, at=NOW - timedelta(minutes=45))  # fmt: skip
HPA_AT_4 = Scaler(hpa="venue-hpa", min_replicas=4, max_replicas=10)
OWED = VenueServiceStatus(incident=RESOLVED, capacity=LENT)

# (id, observation, rollout, status, policy, expected action, expected params subset)
CASES: list[tuple[Any, ...]] = [
    ("HPA: raise its minReplicas", SLOW, rollout(scaler=HPA),
     VenueServiceStatus(incident=INCIDENT), policy(), Action.SCALE_UP,
     {"scaleKind": "HorizontalPodAutoscaler", "scaleName": "venue-hpa", "fromReplicas": "2",
      "toReplicas": "3", "originalReplicas": "2"}),
    ("no HPA: the Deployment, as before", SLOW, rollout(),
     VenueServiceStatus(incident=INCIDENT), policy(), Action.SCALE_UP,
     {"scaleKind": "Deployment", "scaleName": "venue-service", "toReplicas": "3"}),
    ("KEDA owns the HPA: the ScaledObject", SLOW, rollout(scaler=KEDA),
     VenueServiceStatus(incident=INCIDENT), policy(), Action.SCALE_UP,
     {"scaleKind": "ScaledObject", "scaleName": "venue-so", "toReplicas": "3"}),
    ("second step keeps the first step's original", SLOW, rollout(3, scaler=Scaler(
        hpa="venue-hpa", min_replicas=3, max_replicas=10)),
     VenueServiceStatus(incident=INCIDENT, capacity=LENT.model_copy(update={"written": 3})),
     policy(), Action.SCALE_UP, {"toReplicas": "4", "originalReplicas": "2"}),
    ("at the HPA's maxReplicas: escalate, never raise its max", SLOW,
     rollout(4, scaler=Scaler(hpa="venue-hpa", min_replicas=4, max_replicas=4)),
     VenueServiceStatus(incident=INCIDENT), policy(), Action.ESCALATE, {}),
    ("HPAs cannot be watched: escalate rather than fight one", SLOW,
     rollout(scaler_unreadable="whether an HPA scales it is unknown: may not list"),
     VenueServiceStatus(incident=INCIDENT), policy(), Action.ESCALATE, {}),
    ("ScaledObject unreadable: escalate", SLOW, rollout(scaler=Scaler(
        hpa="h", min_replicas=2, max_replicas=10, scaled_object="venue-so")),
     VenueServiceStatus(incident=INCIDENT), policy(), Action.ESCALATE, {}),
    ("healthy long enough: scale back one step", {}, rollout(4, scaler=HPA_AT_4), OWED,
     policy(), Action.SCALE_BACK,
     {"scaleKind": "HorizontalPodAutoscaler", "fromReplicas": "4", "toReplicas": "3",
      "originalReplicas": "2"}),
    ("restoreAfter 0s: capacity is kept", {}, rollout(4, scaler=HPA_AT_4), OWED,
     policy(scale={"restoreAfter": "0s"}), None, {}),
    ("somebody raised minReplicas to 6: abandon, write nothing", {},
     rollout(6, scaler=Scaler(hpa="venue-hpa", min_replicas=6, max_replicas=10)), OWED,
     policy(), Action.ABANDON_RESTORE,
     {"foundReplicas": "6", "wroteReplicas": "4", "originalReplicas": "2"}),
    ("a breach again during the restore: scale up, not back", SLOW,
     rollout(4, scaler=HPA_AT_4), OWED.model_copy(update={"incident": INCIDENT}), policy(),
     Action.SCALE_UP, {"toReplicas": "5"}),
]  # fmt: skip


@pytest.mark.parametrize(("obs", "facts", "status", "pol", "action", "params"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_capacity_rules(obs: dict[str, Any], facts: RolloutFacts, status: VenueServiceStatus,
                        pol: Any, action: Action | None,
                        params: dict[str, str]) -> None:  # fmt: skip
    decision = decide(assessed(**obs), facts, status, pol, NOW)
    assert decision.action is action, decision.reason
    assert params.items() <= dict(decision.params).items()


def test_the_escalation_at_the_hpa_max_names_it() -> None:
    at_max = rollout(4, scaler=Scaler(hpa="venue-hpa", min_replicas=4, max_replicas=4))
    decision = decide(assessed(**SLOW), at_max, VenueServiceStatus(incident=INCIDENT), policy(),
                      NOW)  # fmt: skip
    assert "the HPA's maxReplicas 4" in decision.reason


def test_scale_back_is_dry_run_in_dry_run_mode_and_held_when_paused() -> None:
    facts = rollout(4, scaler=HPA_AT_4)
    dry = decide(assessed(), facts, OWED, policy(mode=Mode.DRY_RUN), NOW)
    assert dry.action is Action.SCALE_BACK and dry.dry_run
    assert decide(assessed(), facts, OWED, policy(), NOW, paused=True).action is None


def test_scale_back_counts_against_the_budget_and_waits_for_it_quietly() -> None:
    spent = [record(Action.SCALE_UP, m) for m in (10, 20)]
    status = OWED.model_copy(update={"history": spent})
    decision = decide(assessed(), rollout(4, scaler=HPA_AT_4), status,
                      policy(max_actions_per_hour=2), NOW)  # fmt: skip
    assert decision.action is None and "budget" in decision.reason  # waits; pages nobody
