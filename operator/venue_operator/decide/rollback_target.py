"""Where a rollback goes, and every reason it may not, pure. Shared by decide's rollback rule
(rules.roll_back_after_recent_rollout) and the rollout guard (guard/verdict.py), so that a
guardrail added here holds for both.

The target is the newest revision known healthy, never one rolled back from, never across a
migration that is not marked backward compatible; and never again from a template a GitOps
controller re-applied (rolling back again would loop with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from venue_operator.decide.decision import Action
from venue_operator.decide.rollout import RolloutFacts
from venue_operator.model import keys
from venue_operator.model.observations import Revision
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import ActionResult, VenueServiceStatus


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


def reapplied_key(template: str, gitops: bool = True) -> str:
    # Kept in status (incident.escalations) as it always was: a new key would escalate and
    # page again after an upgrade mid-incident.
    return f"reapplied-by-gitops:{template}" if gitops else f"reapplied:{template}"


def reapplied_by(rollout: RolloutFacts, status: VenueServiceStatus) -> str | None:
    """Who applied again a template we rolled back from (current again), or None: the Flux
    or Argo CD object, else the field manager that last wrote the pod template (a `kubectl
    apply` loop, a pipeline). Rolling back again would only be undone by the same writer."""
    current = rollout.current
    if current is None or current.template_hash not in status.rolled_back_templates:
        return None
    if rollout.gitops is not None:
        return str(rollout.gitops)
    if not _came_back(current.template_hash, rollout, status):
        return None  # it never left (our rollback failed, or has not landed yet)
    if rollout.template_writer:
        return f"field manager {rollout.template_writer}"
    return "a writer the Deployment's managedFields do not name"


def _came_back(template: str, rollout: RolloutFacts, status: VenueServiceStatus) -> bool:
    """Our rollback from `template` went through, and somebody made it current again: the
    Deployment still carries our rollback's mark (keys.ROLLED_BACK_TO, written with the
    rollback) naming another template. A watch cache that has not caught up with our own
    rollback shows neither the mark nor the change, so it never reads as a re-apply."""
    left = any(
        r.action == Action.ROLL_BACK and r.result is ActionResult.SUCCEEDED
        and r.inputs.get("fromTemplate") == template for r in status.history
    )  # fmt: skip
    return left and rollout.rolled_back_to not in (None, template)


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
    writer = reapplied_by(rollout, status)
    if writer is not None and rollout.current is not None:
        bad, gitops = rollout.current.template_hash, rollout.gitops is not None
        loop = (
            "it would loop with the GitOps controller"
            if gitops
            else "the same writer would undo it"
        )
        return RollbackPlan(f"{writer} re-applied pod template {bad}, which was rolled back "
                            f"from; not rolling back again ({loop})",
                            held=reapplied_key(bad, gitops))  # fmt: skip
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
