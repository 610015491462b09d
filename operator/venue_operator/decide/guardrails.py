"""Guardrails, pure: what holds an action back, and when holding back needs a human.

Before any rule: mode Off and the pause annotation (switched_off). Between the rules
(procedure.py places them): a dependency outage's echo window (dependency_echo) and
verify-after-action (verification: wait for recovery, then escalate, never chain). After the
rules: cooldown per action type, the hourly budget, DryRun last (apply_guardrails). Nothing
held back is silent: a budget used up, or a cooldown holding while the incident worsens,
escalates (held_to_escalation); every escalation is made once per incident and cause
(escalate). The rollback's own guardrails are in rollback_target.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from venue_operator.assess.assessment import Assessment
from venue_operator.decide.decision import (
    ATTEMPTED,
    EFFECTIVE,
    P1_SECTION,
    PROTECTIVE_ACTIONS,
    WORKLOAD_ACTIONS,
    Action,
    Decision,
    last_record,
    no_action,
    spoken,
)
from venue_operator.model import keys
from venue_operator.model.reasons import Reason
from venue_operator.model.remediation import Mode, RemediationPolicy
from venue_operator.model.status import ActionRecord, Health, Severity, VenueServiceStatus


def switched_off(policy: RemediationPolicy, paused: bool) -> tuple[str, str] | None:
    """Why no action at all may be taken (mode Off, the pause annotation) -> (why, held key)."""
    if policy.mode is Mode.OFF:
        return "remediation mode Off: watching only", "mode-off"
    if paused:
        return f"paused by annotation {keys.PAUSED}", "paused"
    return None


def escalated(status: VenueServiceStatus, key: str) -> bool:
    return status.incident is not None and key in status.incident.escalations


def escalate(
    reason: str, section: str, status: VenueServiceStatus, key: str,
    params: Mapping[str, str] | None = None, event_reason: Reason | None = None,
) -> Decision:  # fmt: skip
    """Hand over to humans, once per incident and cause."""
    if escalated(status, key):
        return no_action(f"already escalated: {reason}", held="escalated")
    return Decision(Action.ESCALATE, reason, section, params or {}, key=key,
                    event_reason=event_reason)  # fmt: skip


def dependency_echo(
    status: VenueServiceStatus, policy: RemediationPolicy, now: datetime
) -> tuple[Decision | None, datetime | None]:
    """Errors and latency lag a dependency outage by their rate window: for
    `circuitBreaker.echoWindow` after the circuit closed they are its echo, not a new cause.
    Then the usual rules apply again -> (hold, when the outage's echo ended)."""
    incident = status.incident
    opened = last_record(status.history, {Action.OPEN_CIRCUIT})
    if incident is None or opened is None or opened.at < incident.opened_at:
        return None, None
    closed = last_record(status.history, {Action.CLOSE_CIRCUIT}, EFFECTIVE)
    ended = closed.at if closed is not None and closed.at >= opened.at else opened.at
    resume = ended + policy.circuit_breaker.echo_window
    if now < resume:
        window = int(policy.circuit_breaker.echo_window.total_seconds())
        return no_action(
            f"recovering from a dependency outage: the usual rules apply again at "
            f"{resume:%H:%M:%S} ({window}s echo window after the circuit closed)",
            held="dependency-echo",
        ), None  # fmt: skip
    return None, resume


def verification(
    a: Assessment, status: VenueServiceStatus, policy: RemediationPolicy, now: datetime
) -> Decision | None:
    """After a workload action: wait for recovery; past the window, escalate once."""
    last = last_record(status.history, set(WORKLOAD_ACTIONS), EFFECTIVE)
    incident = status.incident
    if (
        last is None
        or a.health is Health.HEALTHY
        or incident is None
        or last.at < incident.opened_at
    ):
        return None
    if escalated(status, f"verify:{last.correlation_id}"):
        return no_action(f"escalated after {spoken(last.action)}; waiting for a human or recovery",
                         held="escalated")  # fmt: skip
    waited = now - last.at
    if waited < policy.verify_window:
        left = int((policy.verify_window - waited).total_seconds())
        # not held back: an action was taken and is taking effect (status says so; no Warning)
        return no_action(f"verifying {spoken(last.action)} ({last.correlation_id}): {left}s of the "
                         "window left")  # fmt: skip
    if last.action == Action.SCALE_UP:
        return None  # capacity is fixed step by step: the scale rule decides (max -> escalate)
    return Decision(
        Action.ESCALATE,
        f"{spoken(last.action)} at {last.at:%H:%M:%S} did not restore health within "
        f"{int(policy.verify_window.total_seconds())}s; still {a.health} ({a.severity})",
        P1_SECTION,
        {"after": last.action, "correlationId": last.correlation_id},
        key=f"verify:{last.correlation_id}",
    )


def _cooldown(action: Action, policy: RemediationPolicy) -> timedelta:
    c = policy.cooldowns
    return {
        Action.ROLL_BACK: c.rollback,
        Action.SCALE_UP: c.scale,
        Action.RUN_MIGRATION: c.migration,
        Action.OPEN_CIRCUIT: c.circuit_breaker,
        Action.CLOSE_CIRCUIT: c.circuit_breaker,
    }.get(action, timedelta(0))


def _cooling(action: Action, status: VenueServiceStatus) -> ActionRecord | None:
    """The record a cooldown counts from: the same action's last. Except the breaker's
    opening: it opens whenever an outage is confirmed (a second outage a minute after the
    first must not wait); a second close within the cooldown waits, which is what keeps it
    from flapping."""
    if action is Action.OPEN_CIRCUIT:
        return None
    return last_record(status.history, {action})


def apply_guardrails(
    decision: Decision, status: VenueServiceStatus, policy: RemediationPolicy, now: datetime
) -> Decision:
    """Cooldown per action type and the hourly budget; DryRun flag last (the rollout
    guard's decisions too, guard/verdict.py)."""
    action = decision.action
    if action is None:
        return decision
    if action in WORKLOAD_ACTIONS | PROTECTIVE_ACTIONS:
        last = _cooling(action, status)
        cooldown = _cooldown(action, policy)
        if last and now - last.at < cooldown:
            left = int((cooldown - (now - last.at)).total_seconds())
            held = f"{decision.reason}; held: {spoken(action)} cooldown, {left}s left"
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


def held_to_escalation(decision: Decision, a: Assessment, status: VenueServiceStatus) -> Decision:
    """A guardrail holding an action back is fine while it is only waiting; a budget used up,
    or a cooldown while the incident got worse than when we last acted, needs a human."""
    if decision.suppressed_by == "budget":
        key = "budget"
    elif decision.suppressed_by == "cooldown":
        last = last_record(status.history, {decision.action} if decision.action else set())
        if last is None or not _worse(str(a.severity), last.inputs.get("severity")):
            return decision
        key = f"cooldown:{decision.action}:{a.severity}"
    else:
        return decision
    if escalated(status, key):
        return decision  # said once; the suppression record stays, de-duplicated
    return Decision(
        Action.ESCALATE, f"{spoken(str(decision.action))} held while {a.health} ({a.severity}): "
        f"{decision.reason}", P1_SECTION,
        {"held": str(decision.action), "heldBy": decision.suppressed_by or ""}, key=key,
    )  # fmt: skip
