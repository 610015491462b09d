"""capacity: where a scale-up writes, and the rules for giving capacity back (pure tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from venue_operator.decide import capacity
from venue_operator.model.observations import Scaler
from venue_operator.model.remediation import RemediationPolicy, ScalePolicy
from venue_operator.model.status import CapacityLoan, Health, Incident, ScaledKind, Severity

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HPA = Scaler(hpa="venue-hpa", min_replicas=2, max_replicas=10)
HPA_LOW_MAX = Scaler(hpa="venue-hpa", min_replicas=2, max_replicas=4)
KEDA = Scaler(hpa="keda-hpa-venue", min_replicas=2, max_replicas=10, scaled_object="venue-so",
              scaled_object_min=3, scaled_object_max=6)  # fmt: skip
KEDA_UNREAD = Scaler(hpa="keda-hpa-venue", min_replicas=2, max_replicas=10,
                     scaled_object="venue-so")  # fmt: skip
SCALE = ScalePolicy(min_replicas=2, max_replicas=8, step=1)


def policy(verify: str = "2m", **scale: Any) -> RemediationPolicy:
    return RemediationPolicy.model_validate(
        {"scale": {"restoreAfter": "10m", **scale}, "verifyWindow": verify}
    )


# (id, replicas, scaler, expected kind, name, current, bound, next value or None)
TARGETS = [
    ("no HPA: the Deployment's replicas", 3, None, ScaledKind.DEPLOYMENT, "venue", 3, 8, 4),
    ("HPA: its minReplicas, not the Deployment", 2, HPA, ScaledKind.HPA, "venue-hpa", 2, 8, 3),
    (
        "HPA scaled out by itself: raised from what runs",
        6,
        HPA,
        ScaledKind.HPA,
        "venue-hpa",
        2,
        8,
        7,
    ),
    ("the HPA's own max bounds it", 4, HPA_LOW_MAX, ScaledKind.HPA, "venue-hpa", 2, 4, None),
    ("the policy's max bounds it", 8, HPA, ScaledKind.HPA, "venue-hpa", 2, 8, None),
    (
        "KEDA owns the HPA: the ScaledObject's minReplicaCount",
        2,
        KEDA,
        ScaledKind.SCALED_OBJECT,
        "venue-so",
        3,
        6,
        4,
    ),
    (
        "ScaledObject not read: no current value",
        2,
        KEDA_UNREAD,
        ScaledKind.SCALED_OBJECT,
        "venue-so",
        None,
        8,
        3,
    ),
]


@pytest.mark.parametrize(("replicas", "scaler", "kind", "name", "current", "bound", "to"),
                         [t[1:] for t in TARGETS], ids=[t[0] for t in TARGETS])  # fmt: skip
def test_scale_target(replicas: int, scaler: Scaler | None, kind: ScaledKind, name: str,
                      current: int | None, bound: int, to: int | None) -> None:  # fmt: skip
    target = capacity.scale_target("venue", replicas, scaler, SCALE)
    assert (target.kind, target.name, target.current, target.bound) == (kind, name, current, bound)
    if current is not None:
        assert capacity.next_size(target, replicas, SCALE) == to


def test_the_escalation_names_the_bound_that_holds() -> None:
    assert capacity.scale_target("v", 4, HPA_LOW_MAX, SCALE).bound_by == "the HPA's maxReplicas 4"
    assert capacity.scale_target("v", 4, HPA, SCALE).bound_by == "maxReplicas 8"
    assert "maxReplicaCount 6" in capacity.scale_target("v", 4, KEDA, SCALE).bound_by


def loan(kind: ScaledKind = ScaledKind.HPA, name: str = "venue-hpa", original: int = 2,
         written: int = 4, minutes_ago: float = 30) -> CapacityLoan:  # fmt: skip
    return CapacityLoan(kind=kind, name=name, field=capacity.FIELDS[kind], original=original,
                        written=written, at=NOW - timedelta(minutes=minutes_ago))  # fmt: skip


RESOLVED = Incident(id="i", opened_at=NOW - timedelta(minutes=40), severity=Severity.P2,
                    resolved_at=NOW - timedelta(minutes=15))  # fmt: skip
JUST_RESOLVED = RESOLVED.model_copy(update={"resolved_at": NOW - timedelta(minutes=5)})
OPEN = Incident(id="j", opened_at=NOW - timedelta(minutes=1), severity=Severity.P2)
HPA_AT_4 = Scaler(hpa="venue-hpa", min_replicas=4, max_replicas=10)

# (id, loan, replicas, scaler, health, incident, last ScaleBack minutes ago, policy,
#  expected: None, "abandon", or the value of the next step)
RESTORES: list[tuple[Any, ...]] = [
    ("nothing lent", None, 4, HPA_AT_4, Health.HEALTHY, RESOLVED, None, policy(), None),
    ("a loan never written above its original: nothing to give back", loan(written=2), 2,
     HPA, Health.HEALTHY, RESOLVED, None, policy(), None),
    ("healthy restoreAfter since the incident: one step down", loan(), 4, HPA_AT_4,
     Health.HEALTHY, RESOLVED, None, policy(), 3),
    ("a step of 5 stops at the original", loan(), 4, HPA_AT_4, Health.HEALTHY, RESOLVED, None,
     policy(step=5), 2),
    ("resolved less than restoreAfter ago: not yet", loan(), 4, HPA_AT_4, Health.HEALTHY,
     JUST_RESOLVED, None, policy(), None),
    ("restoreAfter 0s: never", loan(), 4, HPA_AT_4, Health.HEALTHY, RESOLVED, None,
     policy(restoreAfter="0s"), None),
    ("breach during the restore (incident open again): stops", loan(), 4, HPA_AT_4,
     Health.DEGRADED, OPEN, None, policy(), None),
    ("not healthy this cycle: stops", loan(), 4, HPA_AT_4, Health.DEGRADED, RESOLVED, None,
     policy(), None),
    ("previous step still verified (1 min of a 2 min window)", loan(minutes_ago=1), 4, HPA_AT_4,
     Health.HEALTHY, RESOLVED, None, policy(), None),
    ("a failed step waits a verify window too", loan(), 4, HPA_AT_4, Health.HEALTHY, RESOLVED,
     1, policy(), None),
    ("previous step verified: next step", loan(written=3, minutes_ago=3),
     3, Scaler(hpa="venue-hpa", min_replicas=3, max_replicas=10), Health.HEALTHY, RESOLVED, 3,
     policy(), 2),
    ("a human changed minReplicas: abandoned", loan(), 4,
     Scaler(hpa="venue-hpa", min_replicas=6, max_replicas=10), Health.HEALTHY, RESOLVED, None,
     policy(), "abandon"),
    ("a human changed it mid-incident: abandoned at once", loan(), 4,
     Scaler(hpa="venue-hpa", min_replicas=5, max_replicas=10), Health.DEGRADED, OPEN, None,
     policy(), "abandon"),
    ("a different value right after our own write: the cache lags, wait", loan(minutes_ago=0.05),
     4, Scaler(hpa="venue-hpa", min_replicas=3, max_replicas=10), Health.HEALTHY, RESOLVED,
     None, policy(), None),
    ("changed right after our write, restore due: neither abandon nor write over it",
     loan(minutes_ago=0.05), 4, Scaler(hpa="venue-hpa", min_replicas=5, max_replicas=10),
     Health.HEALTHY, RESOLVED, None, policy(verify="1s"), None),
    ("the HPA is gone: abandoned", loan(), 4, None, Health.HEALTHY, RESOLVED, None, policy(),
     "abandon"),
    ("KEDA took the HPA over: abandoned", loan(), 4,
     Scaler(hpa="venue-hpa", min_replicas=4, max_replicas=10, scaled_object="so"),
     Health.HEALTHY, RESOLVED, None, policy(), "abandon"),
    ("Deployment replicas: restored while nobody touched them",
     loan(ScaledKind.DEPLOYMENT, "venue"), 4, None, Health.HEALTHY, RESOLVED, None, policy(), 3),
    ("Deployment replicas scaled by a human: abandoned", loan(ScaledKind.DEPLOYMENT, "venue"), 5,
     None, Health.HEALTHY, RESOLVED, None, policy(), "abandon"),
    ("an HPA now scales the Deployment we scaled: abandoned",
     loan(ScaledKind.DEPLOYMENT, "venue"), 4, HPA, Health.HEALTHY, RESOLVED, None, policy(),
     "abandon"),
    ("ScaledObject: restored", loan(ScaledKind.SCALED_OBJECT, "venue-so", 2, 4), 2,
     Scaler(hpa="h", min_replicas=2, max_replicas=10, scaled_object="venue-so",
            scaled_object_min=4), Health.HEALTHY, RESOLVED, None, policy(), 3),
    ("ScaledObject not read this cycle: wait, never guess", loan(ScaledKind.SCALED_OBJECT,
     "venue-so", 2, 4), 2, Scaler(hpa="h", min_replicas=2, max_replicas=10,
     scaled_object="venue-so"), Health.HEALTHY, RESOLVED, None, policy(), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("lent", "replicas", "scaler", "health", "incident", "last_minutes", "pol", "expected"),
    [r[1:] for r in RESTORES], ids=[r[0] for r in RESTORES],
)  # fmt: skip
def test_restore(lent: CapacityLoan | None, replicas: int, scaler: Scaler | None, health: Health,
                 incident: Incident, last_minutes: float | None, pol: RemediationPolicy,
                 expected: int | str | None) -> None:  # fmt: skip
    value = capacity.loan_value(lent, replicas, scaler) if lent else (None, "")
    last = NOW - timedelta(minutes=last_minutes) if last_minutes is not None else None
    step = capacity.restore(lent, value, health, incident, last, pol, NOW)
    if expected is None:
        assert step is None
    elif expected == "abandon":
        assert step is not None and step.abandon and step.to_value is None
    else:
        assert step is not None and not step.abandon and step.to_value == expected


def test_an_abandonment_says_what_it_found_and_what_it_wrote() -> None:
    found = Scaler(hpa="venue-hpa", min_replicas=6, max_replicas=10)
    step = capacity.restore(loan(), capacity.loan_value(loan(), 4, found), Health.HEALTHY,
                            RESOLVED, None, policy(), NOW)  # fmt: skip
    assert step is not None
    assert "spec.minReplicas is 6, not the 4 the operator wrote" in step.reason


def test_the_loan_keeps_its_original_across_steps_and_ends_when_given_back() -> None:
    first = capacity.lend(None, ScaledKind.HPA, "venue-hpa", 2, NOW)
    assert (first.original, first.written) == (2, 2)
    up = capacity.after_write(first, ScaledKind.HPA, "venue-hpa", 3, NOW)
    assert up is not None and capacity.lend(up, ScaledKind.HPA, "venue-hpa", 3, NOW) == up
    up = capacity.after_write(up, ScaledKind.HPA, "venue-hpa", 4, NOW)
    assert up is not None and (up.original, up.written) == (2, 4)
    down = capacity.after_write(up, ScaledKind.HPA, "venue-hpa", 3, NOW)
    assert down is not None and down.written == 3
    assert capacity.after_write(down, ScaledKind.HPA, "venue-hpa", 2, NOW) is None
    # Another object (an HPA appeared): a new loan from its own value.
    other = capacity.lend(up, ScaledKind.SCALED_OBJECT, "so", 5, NOW)
    assert (other.kind, other.original) == (ScaledKind.SCALED_OBJECT, 5)


def test_a_failed_first_write_leaves_no_loan_a_failed_later_one_keeps_it() -> None:
    assert capacity.nothing_lent(loan(written=2)) is None
    assert capacity.nothing_lent(loan(written=3)) == loan(written=3)
    assert capacity.nothing_lent(None) is None
