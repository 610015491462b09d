"""What decide knows about the rollout, pure: the watch-fed workload plus what status
remembers, and whether a rollout is recent enough to blame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from venue_operator.decide.decision import EFFECTIVE, Action, last_record
from venue_operator.model.observations import GitOpsRef, Revision, Scaler, WorkloadState
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import VenueServiceStatus


@dataclass(frozen=True)
class WarmUp:
    """The rollout guard's word that the template's pods, past each one's warm-up, keep the
    P99 limit (guard/warm_up.py): a latency breach that began while it watched is their
    warm-up, not the version. `until`: when its watch ended (None: still watching)."""

    template: str
    said: str  # "its pods' p99 past their 10 s warm-up is 180 ms over 2,400 requests"
    until: datetime | None = None


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
    unreadable: str | None = None  # why the Deployment and its rollout could not be read
    template_writer: str | None = None  # the field manager that last wrote the pod template
    rolled_back_to: str | None = None  # our last rollback's target (keys.ROLLED_BACK_TO)
    warm_up: WarmUp | None = None  # the rollout guard's word on the new pods' warm latency


def rollout_facts(
    workload: WorkloadState, status: VenueServiceStatus, warm_up: WarmUp | None = None
) -> RolloutFacts:
    """What decide needs about the rollout: the watch-fed workload plus what status remembers
    (when the operator first saw the current template become current), and the rollout
    guard's word on the current template's warm latency."""
    current = workload.current
    seen = status.rollout
    started = seen.seen_at if seen and seen.template_hash == workload.template_hash else None
    ours = last_record(status.history, {Action.ROLL_BACK}, EFFECTIVE)
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
        unreadable=workload.unreadable,
        template_writer=workload.template_writer,
        rolled_back_to=workload.rolled_back_to,
        scaler=workload.scaler,
        scaler_unreadable=workload.scaler_unreadable,
        gitops=workload.gitops,
        warm_up=warm_up if warm_up and warm_up.template == workload.template_hash else None,
    )


def recent_rollout(rollout: RolloutFacts, policy: RemediationPolicy, now: datetime) -> bool:
    """A rollout replaced an earlier revision within the window (a first release is none)."""
    started = rollout.started_at
    replaced = any(r != rollout.current for r in rollout.revisions) or bool(
        rollout.earlier_known_good
    )
    recent = started is not None and now - started <= policy.rollback.recent_rollout_window
    return recent and replaced
