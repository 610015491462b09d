"""decide, for the rollout guard: a confirmed bad or stalled rollout -> pause and roll back.
Pure.

The same guardrails as every rollback, from decide itself, so that one added there holds
here too: mode and the pause annotation (guardrails.switched_off); rollback enabled, a human's
pause of the Deployment, never again from a template GitOps re-applied, the known-good target
that never crosses an incompatible migration (rollback_target.rollback_or_why_not); cooldown,
budget, DryRun (guardrails.apply_guardrails). The decision is one ROLL_BACK whose `pauseFirst`
makes the remediator pause the Deployment before the guarded rollback write, which resumes it.
"""

from __future__ import annotations

from datetime import datetime

from venue_operator.decide.decision import ROLLBACK_SECTION, Action, Decision
from venue_operator.decide.guardrails import apply_guardrails, switched_off
from venue_operator.decide.rollback_target import rollback_or_why_not
from venue_operator.decide.rollout import RolloutFacts
from venue_operator.guard.judge import Judgement, Verdict
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import VenueServiceStatus


def decide_guard(
    judgement: Judgement,
    rollout: RolloutFacts,
    status: VenueServiceStatus,
    policy: RemediationPolicy,
    now: datetime,
    paused: bool = False,
    paused_by_guard: bool = False,
) -> Decision:
    """At most one action for a judged rollout; `held` says why not (said once per rollout)."""
    if judgement.verdict not in (Verdict.BAD, Verdict.STALLED):
        return Decision(None, "rollout guard: nothing wrong")
    number = rollout.current.number if rollout.current else "?"
    why = f"rollout guard, revision {number}: {judgement.reason}"
    off = switched_off(policy, paused)
    if off is not None:
        return Decision(None, f"{why}; {off[0]}", held=off[1])
    plan = rollback_or_why_not(rollout, status, policy, paused_by_guard)
    if plan.held is not None:
        return Decision(None, f"{why}; {plan.summary}", held=plan.held)
    decision = Decision(
        Action.ROLL_BACK,
        f"{why}: paused, {plan.summary}",
        ROLLBACK_SECTION,
        {
            **plan.params,
            "pauseFirst": "true",
            "would": f"pause the rollout of revision {number} and roll back to "
            f"{plan.params['toRevision']}",
        },
    )
    return apply_guardrails(decision, status, policy, now)
