"""The runbook's rules, pure: which action for which confirmed checks, each naming its
runbook section. A rule returns None when it does not apply; procedure.py asks them in the
order the runbook's P1 procedure implies, with the guardrails between them.

1. circuit_breaker_on_dependency_down: database or redis down -> open the circuit breaker
   (never roll back or scale into it); back -> close it. Database Connection Failures.
2. run_pending_migrations: not starting with migrations pending -> the migration Job.
   Database Operations.
3. roll_back_after_recent_rollout: degradation that began after a recent rollout -> roll
   back to the last revision known healthy (rollback_target.py). Rollback Procedure. Only
   P99, begun while the rollout guard found the new pods within it past their warm-up
   (guard/warm_up.py) -> escalate instead: the warm-up, not the version.
   escalate_reapplied: a template rolled back from that Flux, Argo CD or any other writer
   applied again -> escalate instead, naming it (rolling back again would loop with it).
4. scale_up_on_saturation: latency / pool / memory critical, no recent rollout -> scale up
   the Deployment, its HPA or the KEDA ScaledObject owning it (capacity.py). High Latency.
5. diagnose_rate_limit: a 429 surge -> a diagnosis naming the top tenants. Rate Limit Errors.
escalate_without_cause: critical with no cause the runbook automates. P1 Procedure.
give_back_lent_capacity: when no rule acts, capacity lent in an incident is given back step
by step (ScaleBack), or abandoned when somebody else wrote the field since (AbandonRestore).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from venue_operator.assess.assessment import Assessment
from venue_operator.decide import capacity
from venue_operator.decide.decision import (
    P1_SECTION,
    ROLLBACK_SECTION,
    Action,
    Decision,
    last_record,
    no_action,
)
from venue_operator.decide.guardrails import escalate
from venue_operator.decide.rollback_target import reapplied_by, reapplied_key, rollback_or_why_not
from venue_operator.decide.rollout import RolloutFacts, WarmUp, recent_rollout
from venue_operator.model.reasons import (
    DB_FAILURES,
    DB_OPERATIONS,
    HIGH_LATENCY,
    RATE_LIMITS,
    Reason,
)
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import Level, ScaledKind, VenueServiceStatus
from venue_operator.model.wording import above, fmt

DEPENDENCIES = ("database", "redis")
# The checks of the service itself (not its dependencies, migrations or 429s).
SERVICE_CHECKS = ("health", "pods", "error_rate", "p99_latency", "pool_utilisation",
                  "pool_pending", "memory")  # fmt: skip
# Those of them that more replicas can fix: rule 4 scales up on these only.
CAPACITY_CHECKS = ("p99_latency", "memory")
POOL_CHECKS = ("pool_utilisation", "pool_pending")  # capacity only by spec.remediation.scale


def confirmed_critical(a: Assessment, *names: str) -> list[str]:
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


def describe(a: Assessment, names: Sequence[str]) -> str:
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
            value, limit = fmt(c.value, c.unit), fmt(c.critical, c.unit)
            parts.append(f"{name} critical (confirmed; {value}, limit {limit})")
    return ", ".join(parts)


def circuit_breaker_on_dependency_down(
    a: Assessment, status: VenueServiceStatus, policy: RemediationPolicy
) -> Decision | None:
    """Rule 1. A dependency down: protect it; nothing else may act while the circuit is open."""
    deps_down = confirmed_critical(a, *DEPENDENCIES)
    if deps_down:
        if status.circuit_open:
            return no_action(f"circuit open while {', '.join(deps_down)} down; rollback and "
                             "scale held", held="circuit-open")  # fmt: skip
        if policy.circuit_breaker.enabled:
            return Decision(
                Action.OPEN_CIRCUIT, f"{' and '.join(deps_down)} down per /health/full",
                DB_FAILURES, {"dependencies": ",".join(deps_down)},
            )  # fmt: skip
        return escalate(f"{', '.join(deps_down)} down and the circuit breaker is disabled",
                        DB_FAILURES, status, "dependency-down")  # fmt: skip
    if not status.circuit_open:
        return None
    if all(a.check(n).level is Level.OK for n in DEPENDENCIES):
        return Decision(Action.CLOSE_CIRCUIT, "database and redis healthy again", DB_FAILURES)
    return no_action("circuit open; waiting until the dependencies are confirmed back",
                     held="circuit-open")  # fmt: skip


def run_pending_migrations(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus, policy: RemediationPolicy
) -> Decision | None:
    """Rule 2. Not starting because migrations are pending."""
    if not confirmed_critical(a, "migrations"):
        return None
    if rollout.migration_running:
        return no_action("migration Job running", held="migration-running")
    if policy.migration.enabled:
        return Decision(
            Action.RUN_MIGRATION, "checks.migrations pending per /health/full", DB_OPERATIONS,
            {"cronJob": policy.migration.cron_job_name},
        )  # fmt: skip
    return escalate("migrations pending and automatic migration is disabled",
                    DB_OPERATIONS, status, "migration-disabled")  # fmt: skip


def _degraded_since(
    status: VenueServiceStatus, now: datetime, outage_ended: datetime | None
) -> datetime:
    """When the degradation began: the incident's opening (now, before one is open), or the
    end of a dependency outage's echo when later (what is still critical then is judged
    from there)."""
    since = status.incident.opened_at if status.incident else now
    return since if outage_ended is None else max(since, outage_ended)


def _began_after_rollout(
    rollout: RolloutFacts, policy: RemediationPolicy, now: datetime, degraded_since: datetime
) -> bool:
    """A recent rollout, and the degradation began after it."""
    if not recent_rollout(rollout, policy, now):
        return False
    return rollout.started_at is not None and degraded_since >= rollout.started_at


def _warm_up_explains(
    rollout: RolloutFacts, critical: list[str], degraded_since: datetime
) -> WarmUp | None:
    """The guard's word (guard/warm_up.py), when only P99 is critical and the breach began
    while it watched the current template."""
    warm = rollout.warm_up
    if warm is None or critical != ["p99_latency"]:
        return None
    return warm if warm.until is None or degraded_since <= warm.until else None


def roll_back_after_recent_rollout(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus, policy: RemediationPolicy,
    critical: list[str], now: datetime, outage_ended: datetime | None,
) -> Decision | None:  # fmt: skip
    """Rule 3. A recent rollout caused it: roll back to the last revision known healthy, or
    escalate with why not (rollback_target.rollback_or_why_not)."""
    degraded_since = _degraded_since(status, now, outage_ended)
    if not _began_after_rollout(rollout, policy, now, degraded_since):
        return None
    number = rollout.current.number if rollout.current else "?"
    why = f"{describe(a, critical)} after the rollout of revision {number}"
    if (warm := _warm_up_explains(rollout, critical, degraded_since)) is not None:
        return escalate(f"{why}, but the rollout guard finds {warm.said}: the pods' warm-up, "
                        "not the version; not rolling back (the old version's pods, started "
                        "anew, would warm up the same way)", HIGH_LATENCY, status,
                        "warm-up")  # fmt: skip
    plan = rollback_or_why_not(rollout, status, policy)
    if plan.held is not None:
        return escalate(f"{why}; {plan.summary}", ROLLBACK_SECTION, status, plan.held)
    return Decision(Action.ROLL_BACK, f"{why}: {plan.summary}", ROLLBACK_SECTION, plan.params)


def escalate_reapplied(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus
) -> Decision | None:
    """The loop guard: a template we rolled back from is current again, re-applied by a
    GitOps controller or by any other writer (a `kubectl apply` loop, a pipeline), and the
    service is critical again. Rolling back again would only start a loop with that writer
    (each apply undoes the rollback): hand over to humans, once per incident, naming the
    writer, and leave the bookkeeping as it is (the template stays rolled back from)."""
    current, writer = rollout.current, reapplied_by(rollout, status)
    critical = confirmed_critical(a, *SERVICE_CHECKS)
    if writer is None or current is None or not critical:
        return None
    why = f"{describe(a, critical)} after the rollout of revision {current.number}"
    bad = current.template_hash
    if rollout.gitops is not None:
        reason = (f"{why}: {writer} re-applied pod template {bad}, which was rolled back "
                  "from; not rolling back again (it would loop with the GitOps controller): "
                  "revert the bad commit in Git, or suspend it")  # fmt: skip
        return escalate(reason, ROLLBACK_SECTION, status, reapplied_key(bad),
                        {"reappliedTemplate": bad, "gitops": writer},
                        Reason.REAPPLIED_BY_GITOPS)  # fmt: skip
    reason = (f"{why}: {writer} applied pod template {bad} again, which was rolled back from; "
              "not rolling back again (the same writer would undo it): stop it applying that "
              f"template, then roll back by hand (kubectl rollout undo deployment/"
              f"{rollout.deployment}) or roll out a fix")  # fmt: skip
    return escalate(reason, ROLLBACK_SECTION, status, reapplied_key(bad, gitops=False),
                    {"reappliedTemplate": bad, "writer": writer},
                    Reason.TEMPLATE_REAPPLIED)  # fmt: skip


def scale_up_on_saturation(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus, policy: RemediationPolicy,
    critical: list[str], now: datetime,
) -> Decision | None:  # fmt: skip
    """Rule 4. Capacity: one step up (capacity.py says where and how far), else escalate. A
    saturated connection pool is the runbook's Database Connection Failures, not capacity
    (unless `scale.onPoolSaturation`): escalated with its steps, even beside a slow p99."""
    scale = policy.scale
    pool = [n for n in critical if n in POOL_CHECKS]
    if pool and not scale.on_pool_saturation:
        return escalate(f"{describe(a, pool)}: the connection pool, not capacity: check "
                        "PgBouncer, the database's connection limits and connection leaks; "
                        "not scaling (more pods open more connections to the same database)",
                        DB_FAILURES, status, "pool-exhausted")  # fmt: skip
    saturated = [n for n in critical if n in CAPACITY_CHECKS + POOL_CHECKS]
    if not saturated:
        return None
    why = describe(a, saturated)
    if not scale.enabled:
        return escalate(f"{why}; automatic scaling disabled", HIGH_LATENCY, status,
                        "scale-disabled")  # fmt: skip
    if rollout.scaler_unreadable:
        return escalate(f"{why}; not scaling: {rollout.scaler_unreadable}", HIGH_LATENCY,
                        status, "scaler-unreadable")  # fmt: skip
    target = capacity.scale_target(rollout.deployment, rollout.replicas, rollout.scaler, scale)
    if target.current is None:
        return escalate(f"{why}; not scaling: {target.describe()} could not be read",
                        HIGH_LATENCY, status, "scaler-unreadable")  # fmt: skip
    to = capacity.next_size(target, rollout.replicas, scale)
    if to is None:
        return escalate(f"{why}; already at {target.bound_by}", HIGH_LATENCY, status,
                        "max-replicas")  # fmt: skip
    what = "" if target.kind is ScaledKind.DEPLOYMENT else f" {target.describe()}"
    loan = capacity.lend(status.capacity, target.kind, target.name, target.current, now)
    return Decision(
        Action.SCALE_UP, f"{why}: scale{what} {target.current} -> {to}", HIGH_LATENCY,
        {"fromReplicas": str(target.current), "toReplicas": str(to),
         "scaleKind": target.kind.value, "scaleName": target.name,
         "originalReplicas": str(loan.original)},
    )  # fmt: skip


def diagnose_rate_limit(a: Assessment, status: VenueServiceStatus) -> Decision | None:
    """Rule 5. A 429 surge: name the top tenants; whether traffic is abusive is for humans."""
    if a.check("rate_limited").level not in (Level.WARNING, Level.CRITICAL):
        return None
    incident = status.incident
    last = last_record(status.history, {Action.DIAGNOSE_RATE_LIMIT})
    if last and incident and last.at >= incident.opened_at:
        return no_action("429 surge already diagnosed in this incident")
    check = a.check("rate_limited")
    return Decision(
        Action.DIAGNOSE_RATE_LIMIT,
        f"429s at {check.value:g}% of requests; {check.reason or 'no tenant breakdown'}; "
        "deciding whether traffic is abusive stays with humans",
        RATE_LIMITS,
    )


def escalate_without_cause(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus, critical: list[str]
) -> Decision:
    """Critical, and no rule found a cause the runbook automates: hand over to humans."""
    if rollout.unreadable:
        why = (f"{describe(a, critical)}; the rollout could not be read ({rollout.unreadable}), "
               "and no capacity or dependency cause the runbook automates")  # fmt: skip
    else:
        why = (f"{describe(a, critical)} with no rollout, capacity or dependency cause the "
               "runbook automates")  # fmt: skip
    return escalate(why, P1_SECTION, status, "no-cause")


def give_back_lent_capacity(
    a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus,
    policy: RemediationPolicy, now: datetime,
) -> Decision | None:  # fmt: skip
    """Give lent capacity back (capacity.restore), or record that it is somebody else's."""
    loan = status.capacity
    if loan is None:
        return None
    value = capacity.loan_value(loan, rollout.replicas, rollout.scaler)
    last = last_record(status.history, {Action.SCALE_BACK})
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
