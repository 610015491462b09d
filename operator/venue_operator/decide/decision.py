"""decide: assessment + rollout facts + remediation history + policy -> at most one action.

Pure. Rules, in the order the runbook's P1 procedure implies:
  1. dependency down -> open the circuit breaker (never roll back or scale into it);
     dependency back -> close it;
  2. service not starting with migrations pending -> run the migration Job;
  3. degradation that began after a recent rollout -> roll back to the last
     revision known healthy; a template rolled back from that Flux or Argo CD re-applied
     -> escalate instead (rolling back again would loop with it);
  4. capacity (latency / pool / memory critical), no recent rollout -> scale up (the
     Deployment, its HPA, or the KEDA ScaledObject owning that: decide/capacity.py);
  5. 429 surge -> a diagnosis naming the top tenants.
When no rule acts, capacity lent in an incident is given back step by step (ScaleBack),
or abandoned when somebody else wrote the field since (AbandonRestore, before any rule).
Guardrails on top: mode, pause, unknown data, verify-after-action (then escalate,
never chain), cooldown per action type, and an hourly budget. Nothing held back is silent:
a budget used up, or a cooldown holding while the incident worsens, escalates (once per
incident and cause); any other reason to hold back while critical carries a `held` key
that is said once per incident (remediate posts it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from venue_operator.assess.assessment import (
    DB_FAILURES,
    DB_OPERATIONS,
    HIGH_LATENCY,
    RATE_LIMITS,
    Assessment,
)
from venue_operator.decide import capacity
from venue_operator.model import keys
from venue_operator.model.observations import GitOpsRef, Revision, Scaler, WorkloadState
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import Mode, RemediationPolicy
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    Health,
    Level,
    ScaledKind,
    Severity,
    VenueServiceStatus,
)
from venue_operator.model.wording import above, fmt

ROLLBACK_SECTION = "Rollback Procedure"
P1_SECTION = "P1 Procedure"


class Action(StrEnum):
    ROLL_BACK = "RollBack"
    SCALE_UP = "ScaleUp"
    RUN_MIGRATION = "RunMigration"
    OPEN_CIRCUIT = "OpenCircuit"
    CLOSE_CIRCUIT = "CloseCircuit"
    ESCALATE = "Escalate"
    DIAGNOSE_RATE_LIMIT = "DiagnoseRateLimit"
    SCALE_BACK = "ScaleBack"  # give back capacity lent in an incident (decide/capacity.py)
    ABANDON_RESTORE = "AbandonRestore"  # somebody else owns the lent field now


# The checks of the service itself (not its dependencies, migrations or 429s).
SERVICE_CHECKS = ("health", "pods", "error_rate", "p99_latency", "pool_utilisation",
                  "pool_pending", "memory")  # fmt: skip
# Those of them that more replicas can fix: rule 4 scales up on these only.
CAPACITY_CHECKS = ("p99_latency", "pool_utilisation", "pool_pending", "memory")
# Actions that write a workload: they are verified, cooled down and budgeted.
WORKLOAD_ACTIONS = {Action.ROLL_BACK, Action.SCALE_UP, Action.RUN_MIGRATION, Action.SCALE_BACK}
PROTECTIVE_ACTIONS = {Action.OPEN_CIRCUIT, Action.CLOSE_CIRCUIT}


@dataclass(frozen=True)
class RolloutFacts:
    current: Revision | None
    revisions: tuple[Revision, ...] = ()
    started_at: datetime | None = None  # when the current template became current
    replicas: int = 0
    paused: bool = False  # Deployment.spec.paused
    migration_running: bool = False
    # Known-good templates other than the current one, whether or not their ReplicaSet
    # still exists: a rollout replaced them even if revisionHistoryLimit cleaned them up.
    earlier_known_good: tuple[str, ...] = ()
    revision_history_limit: int | None = None
    deployment: str = ""
    scaler: Scaler | None = None  # an HPA (or KEDA) owns the replica count
    scaler_unreadable: str | None = None
    gitops: GitOpsRef | None = None  # the Flux/Argo CD object that re-applies the Deployment


@dataclass(frozen=True)
class Decision:
    action: Action | None
    reason: str
    section: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    suppressed_by: str | None = None  # "cooldown", "budget", ... when an action was held back
    # No action although something may be critical: a stable key for "why", said once.
    held: str | None = None
    # An escalation's cause, kept in the incident so that it is made (and paged) once.
    key: str | None = None
    # The Event reason when it is not the action's usual one (remediate.DONE_REASON).
    event_reason: Reason | None = None


def rollout_facts(workload: WorkloadState, status: VenueServiceStatus) -> RolloutFacts:
    """What decide needs about the rollout: the watch-fed workload plus what status remembers
    (when the operator first saw the current template become current)."""
    current = next(
        (r for r in workload.revisions if r.template_hash == workload.template_hash), None
    )
    seen = status.rollout
    started = seen.seen_at if seen and seen.template_hash == workload.template_hash else None
    ours = _last(status.history, {Action.ROLL_BACK}, EFFECTIVE)
    by_us = ours is not None and ours.inputs.get("toTemplate") == workload.template_hash
    # The Deployment says so too (keys.ROLLED_BACK_TO): for a sibling, a restart with a lost
    # status, or a second operator, our rollback is never somebody's new rollout.
    if by_us or (workload.rolled_back_to and workload.rolled_back_to == workload.template_hash):
        started = None
    elif started is None:
        started = workload.rollout_started_at
    return RolloutFacts(
        current=current,
        revisions=workload.revisions,
        started_at=started,
        replicas=workload.desired,
        paused=workload.paused,
        migration_running=workload.migration_running,
        earlier_known_good=tuple(
            h for h in status.healthy_templates if h != workload.template_hash
        ),
        revision_history_limit=workload.revision_history_limit,
        deployment=workload.name,
        scaler=workload.scaler,
        scaler_unreadable=workload.scaler_unreadable,
        gitops=workload.gitops,
    )


def _none(reason: str, held: str | None = None) -> Decision:
    return Decision(None, reason, held=held)


def _critical(a: Assessment, *names: str) -> list[str]:
    """Checks confirmed critical *and* still in breach this cycle: a level held only by
    hysteresis while the value is back to ok is no reason to act (a one-cycle dip to
    warning is still a breach)."""
    out = []
    for name in names:
        check = a.check(name)
        breaching = check.observed in (Level.CRITICAL, Level.WARNING, None)
        if check.level is Level.CRITICAL and breaching:
            out.append(name)
    return out


def _describe(a: Assessment, names: Sequence[str]) -> str:
    """`error_rate 12% > 5%`; a check confirmed critical by its streak whose value this
    cycle is at or under the limit says so instead of printing `5% > 5%`."""
    parts = []
    for name in names:
        c = a.check(name)
        if c.value is None or c.critical is None:
            parts.append(f"{name} {c.level}")
        elif c.value > c.critical:
            value, limit = above(c.value, c.critical, c.unit)
            parts.append(f"{name} {value} > {limit}")
        else:
            now, limit = fmt(c.value, c.unit), fmt(c.critical, c.unit)
            parts.append(f"{name} critical (confirmed; {now} now, limit {limit})")
    return ", ".join(parts)


def recent_rollout(rollout: RolloutFacts, policy: RemediationPolicy, now: datetime) -> bool:
    """A rollout replaced an earlier revision within the window (a first release is none)."""
    started = rollout.started_at
    replaced = any(r != rollout.current for r in rollout.revisions) or bool(
        rollout.earlier_known_good
    )
    recent = started is not None and now - started <= policy.rollback.recent_rollout_window
    return recent and replaced


def rollback_target(
    rollout: RolloutFacts, healthy: Sequence[str], rolled_back: Sequence[str]
) -> tuple[Revision | None, str]:
    """The newest revision known healthy, never one rolled back from, never across a
    migration that is not marked backward compatible -> (target, why-not)."""
    current = rollout.current
    if current is None:
        return None, "the Deployment has no current revision"
    newer_first = sorted(rollout.revisions, key=lambda r: -r.number)
    blocked_by: Revision | None = None
    for rev in newer_first:
        if rev.number > current.number or rev.template_hash == current.template_hash:
            continue
        if rev.template_hash in healthy and rev.template_hash not in rolled_back:
            crossing = [
                r for r in rollout.revisions
                if rev.number < r.number <= current.number
                and r.migration and not r.backward_compatible
            ]  # fmt: skip
            if not crossing:
                return rev, ""
            blocked_by = blocked_by or crossing[0]
    if blocked_by is not None:
        return None, (
            f"rolling back would cross migration {blocked_by.migration!r} of revision "
            f"{blocked_by.number}, not marked {keys.BACKWARD_COMPATIBLE}"
        )
    kept = {r.template_hash for r in rollout.revisions}
    collected = [h for h in healthy if h not in kept and h != current.template_hash]
    if collected:
        limit = rollout.revision_history_limit
        return None, (
            f"the known-good revision's ReplicaSet (pod template {collected[-1]}) was "
            f"garbage-collected (revisionHistoryLimit {'unset' if limit is None else limit})"
        )
    return None, "no earlier revision is known healthy"


@dataclass(frozen=True)
class RollbackPlan:
    """A rollback every guardrail allows (`params` for the act, `summary` says from -> to),
    or why not (`held`: the key decide escalates with and the rollout guard holds with)."""

    summary: str
    params: Mapping[str, str] = field(default_factory=dict)
    held: str | None = None


def switched_off(policy: RemediationPolicy, paused: bool) -> tuple[str, str] | None:
    """Why no action at all may be taken (mode Off, the pause annotation) -> (why, held key)."""
    if policy.mode is Mode.OFF:
        return "remediation mode Off: watching only", "mode-off"
    if paused:
        return f"paused by annotation {keys.PAUSED}", "paused"
    return None


def _reapplied_key(template: str) -> str:
    # Kept in status (incident.escalations) as it always was: a new key would escalate and
    # page again after an upgrade mid-incident.
    return f"reapplied-by-gitops:{template}"


def reapplied_by(rollout: RolloutFacts, status: VenueServiceStatus) -> GitOpsRef | None:
    """The Flux or Argo CD object that re-applied a template we rolled back from (current
    again), or None: rolling back again would only loop with it."""
    current, ref = rollout.current, rollout.gitops
    if ref is None or current is None or current.template_hash not in status.rolled_back_templates:
        return None
    return ref


def rollback_or_why_not(
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    paused_by_guard: bool = False,
) -> RollbackPlan:
    """The guardrails of every rollback, decide's rule 3 and the rollout guard's alike:
    rollback enabled, a Deployment nobody else paused, never again from a template GitOps
    re-applied, and a known-good target that never crosses an incompatible migration
    (rollback_target). Cooldown, budget and DryRun come after, from apply_guardrails."""
    if not policy.rollback.enabled:
        return RollbackPlan("automatic rollback disabled", held="rollback-disabled")
    if rollout.paused and not paused_by_guard:
        return RollbackPlan("the Deployment is paused", held="deployment-paused")
    ref = reapplied_by(rollout, status)
    if ref is not None and rollout.current is not None:
        bad = rollout.current.template_hash
        return RollbackPlan(f"{ref} re-applied pod template {bad}, which was rolled back from; "
                            "not rolling back again (it would loop with the GitOps controller)",
                            held=_reapplied_key(bad))  # fmt: skip
    target, why_not = rollback_target(
        rollout, status.healthy_templates, status.rolled_back_templates
    )
    current = rollout.current
    if target is None or current is None:
        return RollbackPlan(f"cannot roll back: {why_not}", held="no-rollback-target")
    return RollbackPlan(
        f"roll back {current.number} -> {target.number}",
        {
            "fromRevision": str(current.number),
            "fromTemplate": current.template_hash,
            "toRevision": str(target.number),
            "toTemplate": target.template_hash,
        },
    )


# Attempts count, failed ones too: a write that keeps failing must not be retried every cycle.
ATTEMPTED = {
    ActionResult.SUCCEEDED,
    ActionResult.IN_PROGRESS,
    ActionResult.DRY_RUN,
    ActionResult.FAILED,
}


EFFECTIVE = ATTEMPTED - {ActionResult.FAILED}  # what a verification window waits on


def _last(
    history: Sequence[ActionRecord], actions: set[Action], counted: set[ActionResult] = ATTEMPTED
) -> ActionRecord | None:
    for record in reversed(history):
        if record.action in actions and record.result in counted:
            return record
    return None


def _cooldown(action: Action, policy: RemediationPolicy) -> timedelta:
    c = policy.cooldowns
    return {
        Action.ROLL_BACK: c.rollback,
        Action.SCALE_UP: c.scale,
        Action.RUN_MIGRATION: c.migration,
        Action.OPEN_CIRCUIT: c.circuit_breaker,
        Action.CLOSE_CIRCUIT: c.circuit_breaker,
    }.get(action, timedelta(0))


def apply_guardrails(
    decision: Decision, status: VenueServiceStatus, policy: RemediationPolicy, now: datetime
) -> Decision:
    """Cooldown per action type and the hourly budget; DryRun flag last (the rollout
    guard's decisions too, guard/verdict.py)."""
    action = decision.action
    if action is None:
        return decision
    if action in WORKLOAD_ACTIONS | PROTECTIVE_ACTIONS:
        last = _last(status.history, {action})
        cooldown = _cooldown(action, policy)
        if last and now - last.at < cooldown:
            left = int((cooldown - (now - last.at)).total_seconds())
            held = f"{decision.reason}; held: {action} cooldown, {left}s left"
            return replace(decision, suppressed_by="cooldown", reason=held)
        hour = [
            r for r in status.history
            if r.action in WORKLOAD_ACTIONS | PROTECTIVE_ACTIONS and now - r.at < timedelta(hours=1)
            and r.result in ATTEMPTED
        ]  # fmt: skip
        if len(hour) >= policy.max_actions_per_hour:
            again = min(r.at for r in hour) + timedelta(hours=1) if hour else now
            return replace(decision, suppressed_by="budget",
                           reason=f"{decision.reason}; held: budget of "
                           f"{policy.max_actions_per_hour} actions/hour used "
                           f"(next at {again:%H:%M:%S})")  # fmt: skip
    return replace(decision, dry_run=policy.mode is Mode.DRY_RUN)


def _worse(now: str, then: str | None) -> bool:
    known = {s.value for s in Severity}
    return then in known and now in known and Severity(now).rank < Severity(then or "").rank


def _held_to_escalation(decision: Decision, a: Assessment, status: VenueServiceStatus) -> Decision:
    """A guardrail holding an action back is fine while it is only waiting; a budget used up,
    or a cooldown while the incident got worse than when we last acted, needs a human."""
    if decision.suppressed_by == "budget":
        key = "budget"
    elif decision.suppressed_by == "cooldown":
        last = _last(status.history, {decision.action} if decision.action else set())
        if last is None or not _worse(str(a.severity), last.inputs.get("severity")):
            return decision
        key = f"cooldown:{decision.action}:{a.severity}"
    else:
        return decision
    if _escalated(status, key):
        return decision  # said once; the suppression record stays, de-duplicated
    return Decision(
        Action.ESCALATE, f"{decision.action} held while {a.health} ({a.severity}): "
        f"{decision.reason}", P1_SECTION,
        {"held": str(decision.action), "heldBy": decision.suppressed_by or ""}, key=key,
    )  # fmt: skip


def _verification(
    a: Assessment, status: VenueServiceStatus, policy: RemediationPolicy, now: datetime
) -> Decision | None:
    """After a workload action: wait for recovery; past the window, escalate once."""
    last = _last(status.history, set(WORKLOAD_ACTIONS), EFFECTIVE)
    incident = status.incident
    if (
        last is None
        or a.health is Health.HEALTHY
        or incident is None
        or last.at < incident.opened_at
    ):
        return None
    if _escalated(status, f"verify:{last.correlation_id}"):
        return _none(f"escalated after {last.action}; waiting for a human or recovery",
                     held="escalated")  # fmt: skip
    waited = now - last.at
    if waited < policy.verify_window:
        left = int((policy.verify_window - waited).total_seconds())
        return _none(f"verifying {last.action} ({last.correlation_id}): {left}s of the window "
                     "left", held=f"verifying:{last.correlation_id}")  # fmt: skip
    if last.action == Action.SCALE_UP:
        return None  # capacity is fixed step by step: the scale rule decides (max -> escalate)
    return Decision(
        Action.ESCALATE,
        f"{last.action} at {last.at:%H:%M:%S} did not restore health within "
        f"{int(policy.verify_window.total_seconds())}s; still {a.health} ({a.severity})",
        P1_SECTION,
        {"after": last.action, "correlationId": last.correlation_id},
        key=f"verify:{last.correlation_id}",
    )


def _escalated(status: VenueServiceStatus, key: str) -> bool:
    return status.incident is not None and key in status.incident.escalations


def _escalate(
    reason: str, section: str, status: VenueServiceStatus, key: str,
    params: Mapping[str, str] | None = None, event_reason: Reason | None = None,
) -> Decision:  # fmt: skip
    """Hand over to humans, once per incident and cause."""
    if _escalated(status, key):
        return _none(f"already escalated: {reason}", held="escalated")
    return Decision(Action.ESCALATE, reason, section, params or {}, key=key,
                    event_reason=event_reason)  # fmt: skip


def _dependency_echo(
    status: VenueServiceStatus, policy: RemediationPolicy, now: datetime
) -> tuple[Decision | None, datetime | None]:
    """Errors and latency lag a dependency outage by their rate window: for
    `circuitBreaker.echoWindow` after the circuit closed they are its echo, not a new cause.
    Then the usual rules apply again -> (hold, when the outage's echo ended)."""
    incident = status.incident
    opened = _last(status.history, {Action.OPEN_CIRCUIT})
    if incident is None or opened is None or opened.at < incident.opened_at:
        return None, None
    closed = _last(status.history, {Action.CLOSE_CIRCUIT}, EFFECTIVE)
    ended = closed.at if closed is not None and closed.at >= opened.at else opened.at
    resume = ended + policy.circuit_breaker.echo_window
    if now < resume:
        window = int(policy.circuit_breaker.echo_window.total_seconds())
        return _none(
            f"recovering from a dependency outage: the usual rules apply again at "
            f"{resume:%H:%M:%S} ({window}s echo window after the circuit closed)",
            held="dependency-echo",
        ), None  # fmt: skip
    return None, resume


def _rules(
    a: Assessment,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    now: datetime,
) -> Decision:
    deps_down = _critical(a, "database", "redis")
    # 1. Dependency down: protect it; nothing else may act.
    if deps_down:
        if status.circuit_open:
            return _none(f"circuit open while {', '.join(deps_down)} down; rollback and scale "
                         "held", held="circuit-open")  # fmt: skip
        if policy.circuit_breaker.enabled:
            return Decision(
                Action.OPEN_CIRCUIT, f"{' and '.join(deps_down)} down per /health/full",
                DB_FAILURES, {"dependencies": ",".join(deps_down)},
            )  # fmt: skip
        return _escalate(f"{', '.join(deps_down)} down and the circuit breaker is disabled",
                         DB_FAILURES, status, "dependency-down")  # fmt: skip
    deps_ok = all(a.check(n).level is Level.OK for n in ("database", "redis"))
    if status.circuit_open:
        if deps_ok:
            return Decision(Action.CLOSE_CIRCUIT, "database and redis healthy again", DB_FAILURES)
        return _none("circuit open; waiting until the dependencies are confirmed back",
                     held="circuit-open")  # fmt: skip

    echo, outage_ended = _dependency_echo(status, policy, now)
    if echo is not None:
        return echo

    # Before verification: a sync can re-apply the bad template inside the verify window.
    reapplied = _reapplied_by_gitops(a, rollout, status)
    if reapplied is not None:
        return reapplied

    verifying = _verification(a, status, policy, now)
    if verifying is not None:
        return verifying

    # 2. Not starting because migrations are pending.
    if _critical(a, "migrations"):
        if rollout.migration_running:
            return _none("migration Job running", held="migration-running")
        if policy.migration.enabled:
            return Decision(
                Action.RUN_MIGRATION, "checks.migrations pending per /health/full", DB_OPERATIONS,
                {"cronJob": policy.migration.cron_job_name},
            )  # fmt: skip
        return _escalate("migrations pending and automatic migration is disabled",
                         DB_OPERATIONS, status, "migration-disabled")  # fmt: skip

    service_critical = _critical(a, *SERVICE_CHECKS)
    if not service_critical:
        if a.check("rate_limited").level in (Level.WARNING, Level.CRITICAL):
            return _diagnose_rate_limit(a, status)
        return _none(f"{a.health}: nothing to remediate")

    # 3. A recent rollout caused it.
    if recent_rollout(rollout, policy, now):
        # What is still critical after a dependency outage's echo is judged from its end.
        degraded_since = status.incident.opened_at if status.incident else now
        if outage_ended is not None:
            degraded_since = max(degraded_since, outage_ended)
        if rollout.started_at is not None and degraded_since >= rollout.started_at:
            return _rollback(a, rollout, status, policy, service_critical)

    # 4. Capacity.
    capacity = [n for n in service_critical if n in CAPACITY_CHECKS]
    if capacity:
        return _scale_up(a, rollout, status, policy, capacity, now)
    return _escalate(f"{_describe(a, service_critical)} with no rollout, capacity or dependency "
                     "cause the runbook automates", P1_SECTION, status, "no-cause")  # fmt: skip


def _rollback(
    a: Assessment,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    critical: list[str],
) -> Decision:
    number = rollout.current.number if rollout.current else "?"
    why = f"{_describe(a, critical)} after the rollout of revision {number}"
    plan = rollback_or_why_not(rollout, status, policy)
    if plan.held is not None:
        return _escalate(f"{why}; {plan.summary}", ROLLBACK_SECTION, status, plan.held)
    return Decision(Action.ROLL_BACK, f"{why}: {plan.summary}", ROLLBACK_SECTION, plan.params)


def _reapplied_by_gitops(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus
) -> Decision | None:
    """The loop guard: a GitOps controller re-applied a template we rolled back from, and the
    service is critical again. Rolling back again would only start a loop with it (each sync
    undoes the rollback): hand over to humans, once per incident, and leave the bookkeeping
    as it is (the template stays rolled back from, never known-good)."""
    current, ref = rollout.current, reapplied_by(rollout, status)
    critical = _critical(a, *SERVICE_CHECKS)
    if ref is None or current is None or not critical:
        return None
    why = f"{_describe(a, critical)} after the rollout of revision {current.number}"
    reason = (f"{why}: {ref} re-applied pod template {current.template_hash}, which was rolled "
              "back from; not rolling back again (it would loop with the GitOps controller): "
              "revert the bad commit in Git, or suspend it")  # fmt: skip
    return _escalate(reason, ROLLBACK_SECTION, status, _reapplied_key(current.template_hash),
                     {"reappliedTemplate": current.template_hash, "gitops": str(ref)},
                     Reason.REAPPLIED_BY_GITOPS)  # fmt: skip


def _scale_up(
    a: Assessment,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    saturated: list[str],
    now: datetime,
) -> Decision:
    why = _describe(a, saturated)
    scale = policy.scale
    if not scale.enabled:
        return _escalate(f"{why}; automatic scaling disabled", HIGH_LATENCY, status,
                         "scale-disabled")  # fmt: skip
    if rollout.scaler_unreadable:
        return _escalate(f"{why}; not scaling: {rollout.scaler_unreadable}", HIGH_LATENCY,
                         status, "scaler-unreadable")  # fmt: skip
    target = capacity.scale_target(rollout.deployment, rollout.replicas, rollout.scaler, scale)
    if target.current is None:
        return _escalate(f"{why}; not scaling: {target.describe()} could not be read",
                         HIGH_LATENCY, status, "scaler-unreadable")  # fmt: skip
    to = capacity.next_size(target, rollout.replicas, scale)
    if to is None:
        return _escalate(f"{why}; already at {target.bound_by}", HIGH_LATENCY, status,
                         "max-replicas")  # fmt: skip
    what = "" if target.kind is ScaledKind.DEPLOYMENT else f" {target.describe()}"
    loan = capacity.lend(status.capacity, target.kind, target.name, target.current, now)
    return Decision(
        Action.SCALE_UP, f"{why}: scale{what} {target.current} -> {to}", HIGH_LATENCY,
        {"fromReplicas": str(target.current), "toReplicas": str(to),
         "scaleKind": target.kind.value, "scaleName": target.name,
         "originalReplicas": str(loan.original)},
    )  # fmt: skip


def _restore(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus,
    policy: RemediationPolicy, now: datetime,
) -> Decision | None:  # fmt: skip
    """Give lent capacity back (capacity.restore), or record that it is somebody else's."""
    loan = status.capacity
    if loan is None:
        return None
    value = capacity.loan_value(loan, rollout.replicas, rollout.scaler)
    last = _last(status.history, {Action.SCALE_BACK})
    step = capacity.restore(loan, value, a.health, status.incident, last.at if last else None,
                            policy, now)  # fmt: skip
    if step is None:
        return None
    params = {"scaleKind": loan.kind.value, "scaleName": loan.name,
              "originalReplicas": str(loan.original)}  # fmt: skip
    if step.abandon:
        found = {"foundReplicas": str(value[0])} if value[0] is not None else {}
        return Decision(Action.ABANDON_RESTORE, step.reason, HIGH_LATENCY,
                        {**params, **found, "wroteReplicas": str(loan.written)})  # fmt: skip
    # From what the operator wrote: the act writes only over that value (a guard for a
    # change between this decision and the write).
    return Decision(Action.SCALE_BACK, step.reason, HIGH_LATENCY,
                    {**params, "fromReplicas": str(loan.written),
                     "toReplicas": str(step.to_value)})  # fmt: skip


def _diagnose_rate_limit(a: Assessment, status: VenueServiceStatus) -> Decision:
    incident = status.incident
    last = _last(status.history, {Action.DIAGNOSE_RATE_LIMIT})
    if last and incident and last.at >= incident.opened_at:
        return _none("429 surge already diagnosed in this incident")
    check = a.check("rate_limited")
    return Decision(
        Action.DIAGNOSE_RATE_LIMIT,
        f"429s at {check.value:g}% of requests; {check.reason or 'no tenant breakdown'}; "
        "deciding whether traffic is abusive stays with humans",
        RATE_LIMITS,
    )


def decide(
    a: Assessment,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    now: datetime,
    paused: bool = False,
) -> Decision:
    """At most one action for this cycle, with a reason naming the runbook section."""
    off = switched_off(policy, paused)
    if off is not None:
        return _none(*off)
    if a.health is Health.UNKNOWN:
        return _none("health unknown: no action on missing data")
    restoring = _restore(a, rollout, status, policy, now)
    if restoring is not None and restoring.action is Action.ABANDON_RESTORE:
        return restoring  # only a record: nothing is written, nothing to guard
    decision = _rules(a, rollout, status, policy, now)
    if decision.action is None and restoring is not None:
        decision = restoring
    guarded = apply_guardrails(decision, status, policy, now)
    if guarded.action is Action.SCALE_BACK and guarded.suppressed_by is not None:
        return _none(guarded.reason)  # giving capacity back can wait: no page, no Event
    return _held_to_escalation(guarded, a, status)
