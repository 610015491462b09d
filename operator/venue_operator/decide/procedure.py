"""decide: assessment + rollout facts + remediation history + policy -> at most one action.

Pure. The rules (rules.py), in the order the runbook's P1 procedure implies:
  1. dependency down -> open the circuit breaker (never roll back or scale into it);
     dependency back -> close it;
  2. service not starting with migrations pending -> run the migration Job;
  3. degradation that began after a recent rollout -> roll back to the last
     revision known healthy (rollback_target.py); a template rolled back from that Flux or
     Argo CD re-applied -> escalate instead (rolling back again would loop with it);
  4. capacity (latency / pool / memory critical), no recent rollout -> scale up (the
     Deployment, its HPA, or the KEDA ScaledObject owning that: capacity.py);
  5. 429 surge -> a diagnosis naming the top tenants.
When no rule acts, capacity lent in an incident is given back step by step (ScaleBack),
or abandoned when somebody else wrote the field since (AbandonRestore, before any rule).
Guardrails on top (guardrails.py): mode, pause, unknown data, verify-after-action (then
escalate, never chain), cooldown per action type, and an hourly budget; a fleet storm holds
the scale-ups and rollbacks it explains (storm.py). Nothing held back is
silent: a budget used up, or a cooldown holding while the incident worsens, escalates (once
per incident and cause); any other reason to hold back while critical carries a `held` key
that is said once per incident (remediate posts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from venue_operator.assess.assessment import Assessment
from venue_operator.decide import rules
from venue_operator.decide.decision import Action, Decision, no_action
from venue_operator.decide.guardrails import (
    apply_guardrails,
    dependency_echo,
    held_to_escalation,
    switched_off,
    verification,
)
from venue_operator.decide.rollout import RolloutFacts
from venue_operator.decide.storm import Storm, explaining, held_by_storm
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import Health, VenueServiceStatus


def decide(
    a: Assessment,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    now: datetime,
    paused: bool = False,
    storms: Sequence[Storm] = (),
) -> Decision:
    """At most one action for this cycle, with a reason naming the runbook section.
    `storms`: the fleet storms in this service's scopes (decide/storm.py)."""
    off = switched_off(policy, paused)
    if off is not None:
        return no_action(*off)
    if a.health is Health.UNKNOWN:
        return no_action("health unknown: no action on missing data")
    restoring = rules.give_back_lent_capacity(a, rollout, status, policy, now)
    if restoring is not None and restoring.action is Action.ABANDON_RESTORE:
        return restoring  # only a record: nothing is written, nothing to guard
    decision = _first_rule(a, rollout, status, policy, now)
    if decision.action is None and restoring is not None:
        decision = restoring
    guarded = apply_guardrails(decision, status, policy, now)
    guarded = held_by_storm(guarded, explaining(storms, _acted_on(guarded, a)))
    if guarded.action is Action.SCALE_BACK and guarded.suppressed_by is not None:
        return no_action(guarded.reason)  # giving capacity back can wait: no page, no Event
    return held_to_escalation(guarded, a, status)


def _acted_on(decision: Decision, a: Assessment) -> list[str]:
    """The checks a decision acts on: a scale-up, the capacity checks it scales for (a health
    probe timing out beside a p99 storm does not make the scale-up the service's own); a
    rollback, every confirmed-critical check."""
    if decision.action is Action.SCALE_UP:
        return rules.confirmed_critical(a, *rules.CAPACITY_CHECKS, *rules.POOL_CHECKS)
    return rules.confirmed_critical(a, *rules.SERVICE_CHECKS)


def _first_rule(
    a: Assessment,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    now: datetime,
) -> Decision:
    """The first rule that applies, in the runbook's order, with the dependency outage's echo
    window and verify-after-action between them."""
    dependency = rules.circuit_breaker_on_dependency_down(a, status, policy)
    if dependency is not None:
        return dependency  # nothing else may act
    echo, outage_ended = dependency_echo(status, policy, now)
    if echo is not None:
        return _naming_the_held_release(echo, a, rollout, status, policy, now)
    early = (
        # Before verification: a sync can re-apply the bad template inside the verify window.
        rules.escalate_reapplied(a, rollout, status)
        or verification(a, status, policy, now)
        or rules.run_pending_migrations(a, rollout, status, policy)
    )
    if early is not None:
        return early
    critical = rules.confirmed_critical(a, *rules.SERVICE_CHECKS)
    if not critical:
        return rules.diagnose_rate_limit(a, status) or no_action(
            f"{a.health}: nothing to remediate"
        )
    return (
        rules.roll_back_after_recent_rollout(a, rollout, status, policy, critical, now,
                                             outage_ended)
        or rules.scale_up_on_saturation(a, rollout, status, policy, critical, now)
        or rules.escalate_without_cause(a, rollout, status, critical)
    )  # fmt: skip


def _naming_the_held_release(
    echo: Decision, a: Assessment, rollout: RolloutFacts, status: VenueServiceStatus,
    policy: RemediationPolicy, now: datetime,
) -> Decision:  # fmt: skip
    """The echo window holds everything; when a recent rollout would be rolled back but for
    it, the hold says which revision is failing and what waits (its Event, and a page)."""
    critical = rules.confirmed_critical(a, *rules.SERVICE_CHECKS)
    would = critical and rules.roll_back_after_recent_rollout(
        a, rollout, status, policy, critical, now, None
    )
    if not would or would.action is not Action.ROLL_BACK:
        return echo
    template = would.params.get("fromTemplate") or (
        rollout.current.template_hash if rollout.current else "?")  # fmt: skip
    return replace(echo, reason=f"{would.reason}; held: {echo.reason}",
                   held=f"dependency-echo:{template}", pages=True)  # fmt: skip
