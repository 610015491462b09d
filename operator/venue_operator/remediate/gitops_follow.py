"""After rolling back a Deployment that Flux or Argo CD applies: suspend the GitOps object
if the spec asks (it would re-apply the bad template), and say what a human must do."""

from __future__ import annotations

import structlog

from venue_operator.act import ActError
from venue_operator.decide import gitops
from venue_operator.model.reasons import Reason
from venue_operator.model.status import ActionRecord, VenueServiceStatus
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Events, GitOpsActs, Subject
from venue_operator.remediate.writes import WHO
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)


async def follow_gitops(
    acts: GitOpsActs | None, events: Events, subject: Subject, status: VenueServiceStatus,
    rec: ActionRecord,
) -> tuple[VenueServiceStatus, str]:  # fmt: skip
    """The status with the suspension (or its failure), and the note for the RolledBack
    Event."""
    ref = subject.gitops
    assert ref is not None
    resume = f"venue-operator resume {subject.name} -n {subject.namespace}"
    if not subject.spec.remediation.gitops.suspend or acts is None:
        return status, "; " + gitops.advice(ref, None, resume)
    who = f"{WHO} ({subject.namespace}/{subject.name})"
    try:
        result, suspension = await acts.suspend_gitops(
            ref, subject.namespace, subject.spec.deployment.name, who, rec.correlation_id,
            rec.at,
        )  # fmt: skip
    except ActError as exc:
        missing = "permission missing (the GitOps RBAC is optional: gitops-rbac.yaml): "
        error = redact(f"{ref} not suspended: {missing if exc.denied else ''}{exc}")[:1000]
        log.warning("gitops.not_suspended", namespace=subject.namespace, name=subject.name,
                    error=error)  # fmt: skip
        reason = Reason.PERMISSION_MISSING if exc.denied else Reason.GITOPS_SUSPEND_FAILED
        await events.post_once(None, EventSpec("Warning", reason, error),
                               f"{rec.correlation_id}/gitops")  # fmt: skip
        return gitops.suspended(status, None, error), "; " + gitops.advice(ref, None, resume)
    status = gitops.suspended(status, suspension, None)
    if result.changed:
        event = EventSpec("Normal", Reason.GITOPS_SUSPENDED, f"{result.message} after "
                          f"rollback {rec.correlation_id}; undo: {resume}")  # fmt: skip
        await events.post_once(None, event, f"{rec.correlation_id}/gitops")
    # None of ours: a human suspended it, or it has no automated sync (the act says which).
    found = result.message if suspension is None else None
    return status, "; " + gitops.advice(ref, suspension, resume, found)
