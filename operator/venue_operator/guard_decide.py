"""decide, for the rollout guard: a confirmed bad or stalled rollout -> pause and roll back.
Pure.

The same guardrails as every rollback (decide.py): mode, the pause annotation, rollback
enabled, a human's pause of the Deployment, the known-good target that never crosses an
incompatible migration, cooldown, budget, DryRun. The decision is one ROLL_BACK whose
`pauseFirst` makes the remediator pause the Deployment before the guarded rollback write,
which resumes it.
"""

from __future__ import annotations

from datetime import datetime

from venue_operator import keys
from venue_operator.decide import (
    ROLLBACK_SECTION,
    Action,
    Decision,
    RolloutFacts,
    apply_guardrails,
    rollback_target,
)
from venue_operator.model import Mode, RemediationPolicy, VenueServiceStatus
from venue_operator.rollout_guard import Judgement, Verdict


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
    if policy.mode is Mode.OFF:
        return Decision(None, f"{why}; remediation mode Off: watching only", held="mode-off")
    if paused:
        return Decision(None, f"{why}; paused by annotation {keys.PAUSED}", held="paused")
    if not policy.rollback.enabled:
        return Decision(None, f"{why}; automatic rollback disabled", held="rollback-disabled")
    if rollout.paused and not paused_by_guard:
        return Decision(None, f"{why}; the Deployment is paused by someone else",
                        held="deployment-paused")  # fmt: skip
    target, why_not = rollback_target(
        rollout, status.healthy_templates, status.rolled_back_templates
    )
    if target is None or rollout.current is None:
        return Decision(None, f"{why}; cannot roll back: {why_not}", held="no-rollback-target")
    decision = Decision(
        Action.ROLL_BACK,
        f"{why}: paused, roll back {rollout.current.number} -> {target.number}",
        ROLLBACK_SECTION,
        {
            "fromRevision": str(rollout.current.number),
            "fromTemplate": rollout.current.template_hash,
            "toRevision": str(target.number),
            "toTemplate": target.template_hash,
            "pauseFirst": "true",
            "would": f"pause the rollout of revision {rollout.current.number} and roll back "
            f"to {target.number}",
        },
    )
    return apply_guardrails(decision, status, policy, now)
