"""Capacity, pure: where a scale-up writes, how far it may go, and when what it added is
given back.

A Deployment scaled by a HorizontalPodAutoscaler is not ours to size: writing its
`replicas` fights the HPA (knative/operator#1200). So a scale-up raises the HPA's
`minReplicas`, or, when KEDA owns that HPA (and would reset it), the ScaledObject's
`minReplicaCount`. What was raised is a loan (`status.capacity`): once the incident is
resolved and the service has stayed healthy for `scale.restoreAfter`, it is given back
step by step, each step followed by `verifyWindow` of health, and only while nobody else
has written the field since (then it is theirs: the restore is abandoned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from venue_operator.model.observations import Scaler
from venue_operator.model.remediation import RemediationPolicy, ScalePolicy
from venue_operator.model.status import CapacityLoan, Health, Incident, ScaledKind

FIELDS = {
    ScaledKind.DEPLOYMENT: "spec.replicas",
    ScaledKind.HPA: "spec.minReplicas",
    ScaledKind.SCALED_OBJECT: "spec.minReplicaCount",
}
# Our own write reaches the watch cache within milliseconds; a different value seen this soon
# after it is more likely the cache lagging than somebody else's write.
SETTLE = timedelta(seconds=5)


@dataclass(frozen=True)
class ScaleTarget:
    """The object and field a scale-up writes, its value now, and how far it may go."""

    kind: ScaledKind
    name: str
    current: int | None  # None: not readable (the ScaledObject could not be read)
    bound: int
    bound_by: str  # for the escalation: "maxReplicas 10", "the HPA's maxReplicas 4"

    @property
    def field(self) -> str:
        return FIELDS[self.kind]

    def describe(self) -> str:
        return f"{self.kind} {self.name} {self.field}"


def scale_target(deployment: str, replicas: int, scaler: Scaler | None,
                 policy: ScalePolicy) -> ScaleTarget:  # fmt: skip
    """The Deployment itself, its HPA, or the ScaledObject owning that HPA."""
    if scaler is None:
        return ScaleTarget(ScaledKind.DEPLOYMENT, deployment, replicas, policy.max_replicas,
                           f"maxReplicas {policy.max_replicas}")  # fmt: skip
    if scaler.scaled_object is not None:
        kind, name = ScaledKind.SCALED_OBJECT, scaler.scaled_object
        current = scaler.scaled_object_min
        own_max = scaler.scaled_object_max or scaler.max_replicas
        whose = f"the ScaledObject's maxReplicaCount {own_max}"
    else:
        kind, name, current = ScaledKind.HPA, scaler.hpa, scaler.min_replicas
        own_max = scaler.max_replicas
        whose = f"the HPA's maxReplicas {own_max}"
    if own_max < policy.max_replicas:
        return ScaleTarget(kind, name, current, own_max, whose)
    return ScaleTarget(kind, name, current, policy.max_replicas,
                       f"maxReplicas {policy.max_replicas}")  # fmt: skip


def next_size(target: ScaleTarget, replicas: int, policy: ScalePolicy) -> int | None:
    """The value one step up, or None at the bound. An HPA already above its minimum (it
    scaled out by itself) is raised from the replicas it runs, not from its minimum."""
    base = max(replicas, target.current or 0)
    if base >= target.bound:
        return None
    return min(target.bound, max(base + policy.step, policy.min_replicas))


def loan_value(loan: CapacityLoan, replicas: int, scaler: Scaler | None) -> tuple[int | None, str]:
    """The loaned field's value now -> (value, why it is gone); (None, "") when unread."""
    if loan.kind is ScaledKind.DEPLOYMENT:
        if scaler is not None:
            return None, f"HorizontalPodAutoscaler {scaler.hpa} now scales the Deployment"
        return replicas, ""
    if loan.kind is ScaledKind.HPA:
        if scaler is None or scaler.hpa != loan.name:
            return None, f"HorizontalPodAutoscaler {loan.name} no longer scales the Deployment"
        if scaler.scaled_object is not None:
            return None, f"ScaledObject {scaler.scaled_object} now owns {loan.name}"
        return scaler.min_replicas, ""
    if scaler is None or scaler.scaled_object != loan.name:
        return None, f"ScaledObject {loan.name} no longer scales the Deployment"
    return scaler.scaled_object_min, ""


@dataclass(frozen=True)
class Restore:
    """One step of giving capacity back (to_value), or abandoning it (abandon)."""

    reason: str
    to_value: int | None = None
    abandon: bool = False


def restore(
    loan: CapacityLoan | None,
    value: tuple[int | None, str],
    health: Health,
    incident: Incident | None,
    last_attempt: datetime | None,
    policy: RemediationPolicy,
    now: datetime,
) -> Restore | None:
    """The next restore step, an abandonment, or None (nothing lent, or not yet).

    `value` is `loan_value`'s answer; `last_attempt` the last ScaleBack tried (a failed one
    waits a verify window too)."""
    if loan is None or loan.written <= loan.original:
        return None
    current, gone = value
    what = f"{loan.kind} {loan.name} {loan.field}"
    if gone:
        return Restore(f"{gone}: the restore of {what} to {loan.original} is left to its owner",
                       abandon=True)  # fmt: skip
    if current is not None and current != loan.written:
        if now - loan.at < SETTLE:
            return None  # our own write may not have reached the cache yet: look again
        return Restore(
            f"{what} is {current}, not the {loan.written} the operator wrote: somebody else "
            f"owns it now; the restore to {loan.original} is abandoned", abandon=True,
        )  # fmt: skip
    wait = policy.scale.restore_after
    if current is None or not wait or health is not Health.HEALTHY:
        return None  # unread, never restore, or a breach: nothing is given back now
    if incident is not None and (incident.resolved_at is None or now - incident.resolved_at < wait):
        return None
    since = max(loan.at, last_attempt) if last_attempt is not None else loan.at
    if now - since < policy.verify_window:
        return None  # the previous step is still being verified
    to = max(loan.original, current - policy.scale.step)
    healthy = int(wait.total_seconds())
    return Restore(
        f"healthy for {healthy}s or more since the incident: {what} {current} -> {to} "
        f"(back towards {loan.original})", to_value=to,
    )  # fmt: skip


def lend(loan: CapacityLoan | None, kind: ScaledKind, name: str, start: int,
         at: datetime) -> CapacityLoan:  # fmt: skip
    """The loan as a scale-up starts (write-ahead): its original value is kept from the first
    scale-up; a different object (an HPA appeared) starts a new loan."""
    if loan is not None and (loan.kind, loan.name) == (kind, name):
        return loan
    return CapacityLoan(kind=kind, name=name, field=FIELDS[kind], original=start, written=start,
                        at=at)  # fmt: skip


def after_write(loan: CapacityLoan | None, kind: ScaledKind, name: str, value: int,
                at: datetime) -> CapacityLoan | None:  # fmt: skip
    """The loan after a scale-up or a restore step wrote `value`; None once all given back."""
    if loan is None or (loan.kind, loan.name) != (kind, name):
        return loan
    if value <= loan.original:
        return None
    return loan.model_copy(update={"written": value, "at": at})


def nothing_lent(loan: CapacityLoan | None) -> CapacityLoan | None:
    """After a failed write: a loan that never got above its original is no loan."""
    return None if loan is None or loan.written <= loan.original else loan
