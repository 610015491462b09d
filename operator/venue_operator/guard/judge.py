"""The rollout guard's judgement: is the new version worse than the old one? Pure.

During a rollout every pod is read directly (its own /metrics and /health/full); pods of the
new ReplicaSet are one version, all others the old one. Counters are differenced between
reads (a drop is a restart, counted from zero), so the tallies cover the watch only. A pod's
first read is only its baseline, even for a pod born during the watch: a pod IP can be reused,
and what answers on it first may not be the new pod yet. Where a pod cannot be reached
(a NetworkPolicy), its counters come from Prometheus series labelled by `pod` instead
(guard/pod_series.py): the same process totals, only older; a pod whose source changes is
baselined again, since a scrape older than the last direct read would look like a restart.
A pod born during the watch whose first counters come from Prometheus is counted from zero:
its series are its own by name (no reused IP), so its first scrape is already a whole window
and the judgement waits one scrape interval, not two.

"Worse" needs both, so that a few requests or an already noisy old version never trigger it:
- a one-sided Fisher exact test on the 5xx counts below `significance`, and
- the new version's own ratio above the runbook's critical threshold (5%), over at least
  `minRequests` requests.
Latency is judged the same way on p99 from the histogram buckets, leaving out each pod's first
`warmUp` (a JIT or a cold cache is slow, not broken). 5xx are compared per tenant as well
(guard/tenants.py): a version failing one small tenant is caught though the whole is not.
Health failures (after the same warm-up: a pod can be Ready a moment before it answers),
restarts and CrashLoopBackOff of new pods while the old ones are fine count too. A finding
must hold for `confirmations` consecutive reads; a rollout past its progressDeadlineSeconds
is stalled.

A rollout that leaves no old pods (maxSurge 100% with minReadySeconds 0, Recreate) is compared
with the old version's baseline instead (guard/baseline.py: its requests over the minutes
before the template changed), with the same tests, once no old pod answers and the old pods
counted fewer than `minRequests`. While any old pod is read, it is the reference: it shares
the present with the new version (a dependency failing now fails both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from venue_operator.guard import tenants as per_tenant
from venue_operator.guard.stats import bucket_delta, counter_delta, fisher_greater
from venue_operator.guard.tally import VersionTally
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import GuardSource


@dataclass(frozen=True)
class PodSample:
    """One read of one pod. Counters are the process's totals; `reachable` False: no metrics."""

    name: str
    template_hash: str
    created_at: datetime
    ready: bool = True
    restarts: int = 0
    crash_looping: bool = False
    reachable: bool = True
    requests: float = 0.0  # http_requests_total, every status code
    errors: float = 0.0  # the 5xx among them
    buckets: Mapping[float, float] = field(default_factory=dict)  # le -> cumulative count
    health_ok: bool | None = None  # /health/full; None: not probed (not Ready, or fallback)
    source: GuardSource = GuardSource.DIRECT  # where the counters were read
    tenants: per_tenant.Counts = field(default_factory=dict)  # the busiest tenants' totals


@dataclass(frozen=True)
class RolloutRead:
    """Every pod of the Deployment at one instant."""

    at: datetime
    new_hash: str
    pods: tuple[PodSample, ...]
    progress_deadline_exceeded: bool = False


@dataclass(frozen=True)
class GuardLimits:
    error_ratio: float  # a fraction: the runbook's critical 5% is 0.05
    p99_seconds: float
    significance: float
    min_requests: int
    confirmations: int
    warm_up: timedelta
    tenant_min_requests: int = 20
    max_tenants: int = 20

    @classmethod
    def from_spec(cls, spec: VenueServiceSpec) -> GuardLimits:
        guard = spec.rollout_guard
        return cls(
            error_ratio=spec.thresholds.error_rate_percent.critical / 100,
            p99_seconds=spec.thresholds.p99_latency_ms.critical / 1000,
            significance=guard.significance,
            min_requests=guard.min_requests,
            confirmations=guard.confirmations,
            warm_up=guard.warm_up,
            tenant_min_requests=guard.tenants.min_requests,
            max_tenants=guard.tenants.max_tenants,
        )


@dataclass(frozen=True)
class _PodMemory:
    requests: float
    errors: float
    cumulative: Mapping[float, float]
    restarts: int  # as first seen: more later is a restart during the watch
    # Warm-up runs from when the process first answered (a pod created during the watch can
    # start serving seconds after its creationTimestamp) or last restarted (counters reset).
    answering_since: datetime
    source: GuardSource = GuardSource.DIRECT
    tenants: per_tenant.Counts = field(default_factory=dict)


@dataclass(frozen=True)
class GuardState:
    """What the guard remembers between reads of one rollout."""

    started_at: datetime
    new_hash: str
    pods: Mapping[str, _PodMemory] = field(default_factory=dict)
    new: VersionTally = field(default_factory=VersionTally)
    old: VersionTally = field(default_factory=VersionTally)
    streak: int = 0  # consecutive reads that found the new version worse
    # The old version over a window before the template changed: compared with when no old
    # pods are left (maxSurge 100%, Recreate). None: not (yet) known.
    baseline: VersionTally | None = None

    @classmethod
    def begin(cls, started_at: datetime, new_hash: str) -> GuardState:
        return cls(started_at=started_at, new_hash=new_hash)


class Verdict(StrEnum):
    WATCHING = "Watching"  # nothing wrong, or not enough data yet
    SUSPECT = "Suspect"  # worse this read, not confirmed yet
    BAD = "Bad"  # confirmed: pause and roll back
    STALLED = "Stalled"  # past progressDeadlineSeconds: roll back


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str = ""
    p_value: float | None = None


def advance(
    state: GuardState, read: RolloutRead, limits: GuardLimits
) -> tuple[GuardState, Judgement]:
    """Fold one read into the state and judge the rollout so far."""
    state = _fold(state, read, limits)
    if read.progress_deadline_exceeded:
        return state, Judgement(Verdict.STALLED, "rollout exceeded its progressDeadlineSeconds")
    finding = _finding(state, read, limits)
    if finding is None:
        return replace(state, streak=0), Judgement(Verdict.WATCHING)
    reason, p_value = finding
    streak = state.streak + 1
    verdict = Verdict.BAD if streak >= limits.confirmations else Verdict.SUSPECT
    return replace(state, streak=streak), Judgement(verdict, reason, p_value)


def _fold(state: GuardState, read: RolloutRead, limits: GuardLimits) -> GuardState:
    new, old = state.new, state.old
    memory: dict[str, _PodMemory] = {}
    for pod in read.pods:
        before = state.pods.get(pod.name)
        if not pod.reachable:
            if before is not None:
                memory[pod.name] = before
            continue
        # counters from another source: a baseline only (this read's gain is not counted)
        counted = before if before is not None and before.source is pod.source else None
        zero = 0.0 if before is None and _scraped_since_birth(pod, state.started_at) else None
        requests = counter_delta(counted.requests if counted else zero, pod.requests)
        errors = counter_delta(counted.errors if counted else zero, pod.errors)
        by_tenant = per_tenant.busiest(pod.tenants, limits.max_tenants)
        # counted from zero, every tenant it served is new; else each from its last read
        since_read = per_tenant.deltas(counted.tenants if counted else None, by_tenant)
        gained = by_tenant if zero is not None else since_read
        if before is None:
            since = pod.created_at if pod.created_at < state.started_at else read.at
        elif counted is None:
            since = before.answering_since
        else:
            since = read.at if pod.requests < before.requests else before.answering_since
        latency = _latency(counted, pod, read.at - since, limits.warm_up)
        if pod.template_hash == read.new_hash:
            new = new.plus(requests, errors, latency, gained, limits.max_tenants)
        else:
            old = old.plus(requests, errors, latency, gained, limits.max_tenants)
        restarts = before.restarts if before else pod.restarts
        memory[pod.name] = _PodMemory(pod.requests, pod.errors, dict(pod.buckets), restarts,
                                      since, pod.source, by_tenant)  # fmt: skip
    return replace(state, pods=memory, new=new, old=old)


def _scraped_since_birth(pod: PodSample, started_at: datetime) -> bool:
    return pod.source is GuardSource.PROMETHEUS and pod.created_at >= started_at


def _latency(
    before: _PodMemory | None, pod: PodSample, answering: timedelta, warm_up: timedelta
) -> dict[float, float]:
    """Per-bucket (non-cumulative) counts since the last read, nothing while warming up."""
    delta = bucket_delta(before.cumulative if before else None, pod.buckets)
    if answering < warm_up:
        return {}
    counts, below = {}, 0.0
    for le in sorted(delta):
        counts[le] = max(0.0, delta[le] - below)
        below = delta[le]
    return counts


def _finding(
    state: GuardState, read: RolloutRead, limits: GuardLimits
) -> tuple[str, float | None] | None:
    """Why the new version is worse this read, or None."""
    old, name = reference(state, read, limits)
    for found in (
        _errors_worse(state.new, old, name, limits),
        _tenant_worse(state.new, old, name, limits),
        _latency_worse(state.new, old, name, limits),
        _new_pods_failing(state, read, limits.warm_up),
    ):
        if found is not None:
            return found
    return None


OLD_PODS = "old"
BASELINE = "the old version before the change"


def reference(
    state: GuardState, read: RolloutRead, limits: GuardLimits
) -> tuple[VersionTally, str]:
    """What the new version is compared with, and its name in a reason: the old pods' tally;
    once they are gone, the baseline."""
    if state.baseline is None or not old_gone(state, read, limits):
        return state.old, OLD_PODS
    return state.baseline, BASELINE


def old_gone(state: GuardState, read: RolloutRead, limits: GuardLimits) -> bool:
    """No old pod answers any more, and those that did counted fewer than `minRequests`."""
    old_left = any(p.template_hash != read.new_hash and p.reachable for p in read.pods)
    return not old_left and state.old.requests < limits.min_requests


def comparison(new: VersionTally, old: VersionTally, p_value: float, name: str = OLD_PODS) -> str:
    """`new 11.8% 5xx over 412 requests vs old 0.2% over 3,950, p < 0.001`."""
    return (
        f"new {_percent(new.error_ratio)} 5xx over {new.requests:,.0f} requests "
        f"vs {name} {_percent(old.error_ratio)} over {old.requests:,.0f}, {_p(p_value)}"
    )


def _errors_worse(
    new: VersionTally, old: VersionTally, name: str, limits: GuardLimits
) -> tuple[str, float] | None:
    ratio = new.error_ratio
    if new.requests < limits.min_requests or ratio is None or ratio <= limits.error_ratio:
        return None
    p_value = fisher_greater(
        round(new.errors), round(new.requests), round(old.errors), round(old.requests)
    )
    if p_value >= limits.significance:
        return None
    return comparison(new, old, p_value, name), p_value


def _tenant_worse(
    new: VersionTally, old: VersionTally, name: str, limits: GuardLimits
) -> tuple[str, float] | None:
    """`tenant tenant-e: new 30.2% 5xx over 84 requests vs old 0.1% over 1,204, p < 0.001`."""
    found = per_tenant.worst_tenant(new.tenants, old.tenants, limits.error_ratio,
                                    limits.significance, limits.tenant_min_requests)  # fmt: skip
    if found is None:
        return None
    (new_requests, new_errors), (old_requests, old_errors) = found.new, found.old
    return (
        f"tenant {found.tenant}: new {_percent(new_errors / new_requests)} 5xx over "
        f"{new_requests:,.0f} requests vs {name} "
        f"{_percent(_ratio(old_errors, old_requests))} over {old_requests:,.0f}, "
        f"{_p(found.p_value)}",
        found.p_value,
    )


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _latency_worse(
    new: VersionTally, old: VersionTally, name: str, limits: GuardLimits
) -> tuple[str, None] | None:
    if new.latency_requests < limits.min_requests or old.latency_requests < limits.min_requests:
        return None
    new_p99, old_p99 = new.p99(), old.p99()
    if new_p99 is None or old_p99 is None:
        return None
    if new_p99 <= limits.p99_seconds or old_p99 > limits.p99_seconds:
        return None
    return (
        f"new p99 {new_p99 * 1000:,.0f} ms over {new.latency_requests:,.0f} requests "
        f"vs {name} {old_p99 * 1000:,.0f} ms over {old.latency_requests:,.0f} "
        f"(limit {limits.p99_seconds * 1000:,.0f} ms)",
        None,
    )


def _new_pods_failing(
    state: GuardState, read: RolloutRead, warm_up: timedelta
) -> tuple[str, None] | None:
    new = [p for p in read.pods if p.template_hash == read.new_hash]
    old = [p for p in read.pods if p.template_hash != read.new_hash]
    for pod in new:
        memory = state.pods.get(pod.name)
        restarted = memory is not None and pod.restarts > memory.restarts
        if pod.crash_looping or restarted:
            return f"new pod {pod.name} restarting ({pod.restarts} restarts)", None
    if any(p.health_ok is False for p in old) or not any(p.health_ok for p in old):
        return None  # a shared dependency, not the version; or no old pod to compare with
    # A pod just started may not answer yet (Ready before it listens): judged after warm-up.
    failing = [p.name for p in new if p.health_ok is False and read.at - p.created_at >= warm_up]
    if failing:
        return (
            f"new pod {failing[0]} failing /health/full "
            f"({len(failing)} of {len(new)} new pods, old pods ok)",
            None,
        )
    return None


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.1f}%"


def _p(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"
