"""Carry out a decision: write-ahead record -> act -> finish the record -> Events.

The record goes into status *before* the workload write (result InProgress), so an
operator killed mid-action finds it on restart and finishes it; every act is
idempotent, so finishing never acts twice. Status changes are the ledger's (pure);
this module only orders them around the writes, through four ports: the workload
writer (`Acts`), the status store, the Events and the pager. An action's Events are
posted once by name, however often a failed status write makes the cycle repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import structlog

from venue_operator.act import ActError, ActResult
from venue_operator.assess.checks import DB_OPERATIONS
from venue_operator.decide import gitops
from venue_operator.decide.decision import P1_SECTION, Action, Decision
from venue_operator.incident.impact import with_impact_line
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    GitOpsSuspension,
    Level,
    ScaledKind,
    Severity,
    VenueServiceStatus,
)
from venue_operator.record import ledger
from venue_operator.record.transitions import EventSpec
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)

WHO = "venue-operator"
DONE_REASON = {
    Action.ROLL_BACK: Reason.ROLLED_BACK,
    Action.SCALE_UP: Reason.SCALED_UP,
    Action.RUN_MIGRATION: Reason.MIGRATION_STARTED,
    Action.OPEN_CIRCUIT: Reason.CIRCUIT_OPENED,
    Action.CLOSE_CIRCUIT: Reason.CIRCUIT_CLOSED,
    Action.ESCALATE: Reason.ESCALATED,
    Action.DIAGNOSE_RATE_LIMIT: Reason.RATE_LIMIT_DIAGNOSED,
    Action.SCALE_BACK: Reason.SCALED_BACK,
    Action.ABANDON_RESTORE: Reason.RESTORE_ABANDONED,
}
WARNING_ACTIONS = {Action.ESCALATE, Action.OPEN_CIRCUIT, Action.DIAGNOSE_RATE_LIMIT}
# Actions whose effect lands on the Deployment: their Events go there too.
ON_DEPLOYMENT = {Action.ROLL_BACK, Action.SCALE_UP, Action.SCALE_BACK}


class Acts(Protocol):
    """The workload writes a remediation can make (act/writer.py); each raises ActError only."""

    async def roll_back(
        self,
        namespace: str,
        deployment: str,
        to_template: str,
        cause: str,
        rid: str,
        resume: bool = False,
    ) -> ActResult: ...
    async def pause_rollout(self, namespace: str, deployment: str, rid: str) -> ActResult: ...
    async def set_count(
        self,
        namespace: str,
        kind: ScaledKind,
        name: str,
        value: int,
        scaled_from: int | None,
        expect: int | None = None,
    ) -> ActResult: ...
    async def run_migration(self, namespace: str, cronjob: str, rid: str) -> ActResult: ...
    async def migration_outcome(self, namespace: str, job: str) -> str | None: ...
    async def set_circuit(
        self, namespace: str, config_map: str, key: str, open_: bool, who: str, reason: str
    ) -> ActResult: ...


class GitOpsActs(Protocol):
    """Suspending the GitOps object that would re-apply a rolled-back Deployment."""

    async def suspend_gitops(
        self, ref: GitOpsRef, namespace: str, deployment: str, who: str, rid: str, now: datetime
    ) -> tuple[ActResult, GitOpsSuspension | None]: ...


class Events(Protocol):
    """Events on the VenueService (ref None) or on another object (a ref)."""

    def post(self, ref: dict[str, Any] | None, event: EventSpec) -> None: ...
    async def post_once(self, ref: dict[str, Any] | None, event: EventSpec, key: str) -> bool: ...


class Store(Protocol):
    """The one writer of the VenueService's status (status.StatusStore is the real one)."""

    async def save(self, status: VenueServiceStatus, cause: str) -> None: ...


Pager = Callable[[VenueServiceStatus, EventSpec], Awaitable[None]]


@dataclass(frozen=True)
class Subject:
    """The VenueService a remediation is for, and the Deployment its Events also go to."""

    namespace: str
    name: str
    spec: VenueServiceSpec
    deployment_ref: dict[str, Any] | None  # apiVersion/kind/metadata for Events
    gitops: GitOpsRef | None = None  # the Flux/Argo CD object that applies the Deployment


def correlation_id(action: Action) -> str:
    return f"{action.value.lower()}-{uuid.uuid4().hex[:8]}"


@dataclass
class Remediator:
    acts: Acts
    events: Events
    store: Store
    pager: Pager
    new_id: Callable[[Action], str] = correlation_id
    gitops: GitOpsActs | None = None

    async def finish_in_progress(
        self, subject: Subject, status: VenueServiceStatus, now: datetime
    ) -> VenueServiceStatus:
        """A record left InProgress (crash, or a running migration): complete it once."""
        pending = next(
            (r for r in reversed(status.history) if r.result is ActionResult.IN_PROGRESS), None
        )
        if pending is None:
            return status
        decision = Decision(Action(pending.action), pending.reason, pending.section or "",
                            pending.inputs)  # fmt: skip
        if pending.action == Action.RUN_MIGRATION and "job" in pending.inputs:
            return await self._follow_migration(subject, status, pending, now)
        log.info("remediation.resume", action=pending.action, id=pending.correlation_id)
        return await self._act_and_finish(subject, status, decision, pending)

    async def carry_out(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Record and (unless dry run, suppressed or event-only) perform the decision."""
        if decision.action is None:
            return await self._held(status, decision)
        if decision.suppressed_by is not None:
            return await self._suppressed(status, decision, now)
        if decision.dry_run:
            return await self._dry_run(status, decision, now)
        if decision.action in (Action.ESCALATE, Action.DIAGNOSE_RATE_LIMIT):
            return await self._announce(status, decision, now)
        if decision.action is Action.ABANDON_RESTORE:
            return await self._announce(ledger.abandon_restore(status), decision, now)
        rec = self._record(decision, now, ActionResult.IN_PROGRESS, status)
        status = ledger.begin(status, rec)
        await self.store.save(status, "remediation")  # write-ahead: the intent survives a crash
        return await self._act_and_finish(subject, status, decision, rec)

    def _record(
        self, decision: Decision, now: datetime, result: ActionResult, status: VenueServiceStatus
    ) -> ActionRecord:
        assert decision.action is not None
        return ledger.new_record(decision, now, result, self.new_id(decision.action),
                                 status.severity)  # fmt: skip

    async def _act_and_finish(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, rec: ActionRecord
    ) -> VenueServiceStatus:
        action = Action(rec.action)
        try:
            result = await self._act(subject, decision, rec.correlation_id)
        except ActError as exc:
            return await self._failed(subject, status, rec, exc)
        if action is Action.RUN_MIGRATION:  # InProgress until _follow_migration sees the end
            assert result.job is not None  # the act names the Job it created (or found)
            following = rec.model_copy(update={"inputs": {**rec.inputs, "job": result.job}})
            status = ledger.with_record(status, following)
        else:
            status = ledger.finish(status, rec, ActionResult.SUCCEEDED)
        note, paged = "", None
        if action is Action.ROLL_BACK and subject.gitops is not None:
            status, note = await self._follow_gitops(subject, status, rec)
            paged = ledger.page(status, f"{Reason.ROLLED_BACK}:{rec.correlation_id}")
            status = paged or status
        kind = "Warning" if action in WARNING_ACTIONS else "Normal"
        message = f"{decision.reason} ({result.message}){note}"
        event = EventSpec(kind, DONE_REASON[action], message)
        await self._post_once(subject, action, event, rec.correlation_id)
        await self.store.save(status, "remediation")
        if paged is not None:  # a human must act before the next sync: page once
            await self.pager(status, event)
        return status

    async def _follow_gitops(
        self, subject: Subject, status: VenueServiceStatus, rec: ActionRecord
    ) -> tuple[VenueServiceStatus, str]:
        """After rolling back a Deployment that Flux or Argo CD applies: suspend it if the
        spec asks, and say what a human must do (the note for the RolledBack Event)."""
        ref = subject.gitops
        assert ref is not None
        resume = f"venue-operator resume {subject.name} -n {subject.namespace}"
        if not subject.spec.remediation.gitops.suspend or self.gitops is None:
            return status, "; " + gitops.advice(ref, None, resume)
        who = f"{WHO} ({subject.namespace}/{subject.name})"
        try:
            result, suspension = await self.gitops.suspend_gitops(
                ref, subject.namespace, subject.spec.deployment.name, who, rec.correlation_id,
                rec.at,
            )  # fmt: skip
        except ActError as exc:
            missing = "permission missing (the GitOps RBAC is optional, see the README): "
            error = redact(f"{ref} not suspended: {missing if exc.denied else ''}{exc}")
            error = error[:1000]
            log.warning("gitops.not_suspended", namespace=subject.namespace, name=subject.name,
                        error=error)  # fmt: skip
            reason = Reason.PERMISSION_MISSING if exc.denied else Reason.GITOPS_SUSPEND_FAILED
            await self.events.post_once(None, EventSpec("Warning", reason, error),
                                        f"{rec.correlation_id}/gitops")  # fmt: skip
            advice = gitops.advice(ref, None, resume)
            return gitops.suspended(status, None, error), f"; {advice}"
        status = gitops.suspended(status, suspension, None)
        if result.changed:
            event = EventSpec("Normal", Reason.GITOPS_SUSPENDED, f"{result.message} after "
                              f"rollback {rec.correlation_id}; undo: {resume}")  # fmt: skip
            await self.events.post_once(None, event, f"{rec.correlation_id}/gitops")
        # None of ours: a human suspended it, or it has no automated sync (the act says which).
        found = result.message if suspension is None else None
        return status, "; " + gitops.advice(ref, suspension, resume, found)

    async def _failed(
        self, subject: Subject, status: VenueServiceStatus, rec: ActionRecord, exc: ActError
    ) -> VenueServiceStatus:
        """A refused or impossible write: record it, say it, and hand over to humans now
        (the cooldown would otherwise hold the next attempt for minutes, in silence)."""
        message = redact(f"{rec.action} failed: {exc}")
        log.warning("remediation.failed", namespace=subject.namespace, name=subject.name,
                    action=rec.action, id=rec.correlation_id, error=message)  # fmt: skip
        status = ledger.finish(status, rec, ActionResult.FAILED, message)
        await self.events.post_once(None, EventSpec("Warning", Reason.REMEDIATION_FAILED, message),
                                    rec.correlation_id)  # fmt: skip
        escalation = Decision(
            Action.ESCALATE, f"{message}; the cooldown holds another attempt: a human must act",
            P1_SECTION, {"after": rec.action, "correlationId": rec.correlation_id},
            key=f"failed:{rec.correlation_id}",
        )  # fmt: skip
        return await self._announce(status, escalation, rec.at)

    async def _act(self, subject: Subject, decision: Decision, rid: str) -> ActResult:
        p, ns, spec = decision.params, subject.namespace, subject.spec
        deployment = spec.deployment.name
        cause = f"{WHO}: {decision.reason}"[:1000]
        if decision.action is Action.ROLL_BACK and p.get("pauseFirst") == "true":
            return await self._pause_and_roll_back(subject, decision, cause, rid)
        if decision.action is Action.ROLL_BACK:
            return await self.acts.roll_back(ns, deployment, p["toTemplate"], cause, rid)
        if decision.action in (Action.SCALE_UP, Action.SCALE_BACK):
            return await self._scale(ns, deployment, decision)
        if decision.action is Action.RUN_MIGRATION:
            return await self.acts.run_migration(ns, p["cronJob"], rid)
        if decision.action in (Action.OPEN_CIRCUIT, Action.CLOSE_CIRCUIT):
            cb = spec.remediation.circuit_breaker
            return await self.acts.set_circuit(
                ns, cb.config_map_name, cb.key, decision.action is Action.OPEN_CIRCUIT,
                f"{WHO} ({subject.namespace}/{subject.name})", decision.reason,
            )  # fmt: skip
        raise ActError(f"no writer for {decision.action}")

    async def _scale(self, ns: str, deployment: str, decision: Decision) -> ActResult:
        """Up: the Deployment's replicas, or its HPA's / ScaledObject's minimum (the original
        kept in an annotation there); back: only over the value the operator wrote."""
        p = decision.params
        kind = ScaledKind(p.get("scaleKind", ScaledKind.DEPLOYMENT))
        to = int(p["toReplicas"])
        if decision.action is Action.SCALE_UP and kind is ScaledKind.DEPLOYMENT:
            # The Deployment's loan is kept in status only: no annotation on it.
            return await self.acts.set_count(ns, ScaledKind.DEPLOYMENT, deployment, to, None)
        original = int(p["originalReplicas"])  # decide sets it with every scaleKind
        if decision.action is Action.SCALE_UP:
            return await self.acts.set_count(ns, kind, p["scaleName"], to, original)
        keep = None if to <= original or kind is ScaledKind.DEPLOYMENT else original
        return await self.acts.set_count(ns, kind, p["scaleName"], to, keep,
                                         expect=int(p["fromReplicas"]))  # fmt: skip

    async def _pause_and_roll_back(
        self, subject: Subject, decision: Decision, cause: str, rid: str
    ) -> ActResult:
        """The rollout guard's: stop the rollout at once, then roll back and resume in one
        guarded write (both idempotent: a crash in between is finished by the rerun)."""
        deployment = subject.spec.deployment.name
        paused = await self.acts.pause_rollout(subject.namespace, deployment, rid)
        if paused.changed:
            event = EventSpec("Warning", Reason.ROLLOUT_PAUSED, decision.reason)
            await self._post_once(subject, Action.ROLL_BACK, event, f"{rid}/paused")
        to = decision.params["toTemplate"]
        return await self.acts.roll_back(subject.namespace, deployment, to, cause, rid, True)

    async def _follow_migration(
        self, subject: Subject, status: VenueServiceStatus, rec: ActionRecord, now: datetime
    ) -> VenueServiceStatus:
        job = rec.inputs["job"]
        try:
            outcome = await self.acts.migration_outcome(subject.namespace, job)
        except ActError as exc:
            log.warning("migration.unreadable", job=job, error=str(exc))
            return status
        timeout = subject.spec.remediation.migration.timeout
        if outcome is None and now - rec.at <= timeout:
            return status
        outcome = outcome or "Failed"
        late = "" if outcome == "Succeeded" or now - rec.at <= timeout else " (timed out)"
        result = ActionResult.SUCCEEDED if outcome == "Succeeded" else ActionResult.FAILED
        status = ledger.finish(status, rec, result)
        kind = "Normal" if result is ActionResult.SUCCEEDED else "Warning"
        reason = Reason.MIGRATION_SUCCEEDED if result is ActionResult.SUCCEEDED else (
            Reason.MIGRATION_FAILED)  # fmt: skip
        message = f"Job {job} {outcome.lower()}{late} [runbook: {DB_OPERATIONS}]"
        await self.events.post_once(None, EventSpec(kind, reason, message), rec.correlation_id)
        await self.store.save(status, "remediation")
        return status

    async def _announce(
        self, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Escalations and diagnoses: no workload write, an Event (and a page) once."""
        assert decision.action is not None
        rec = self._record(decision, now, ActionResult.SUCCEEDED, status)
        status = ledger.with_record(status, rec)
        escalating = decision.action is Action.ESCALATE
        if escalating:
            status = ledger.escalate(status, decision.key or rec.correlation_id)
        reason = decision.event_reason or DONE_REASON[decision.action]
        event = EventSpec("Warning", reason, decision.reason)
        if escalating:
            event = replace(event, message=with_impact_line(event.message, status))
        incident = status.incident.id if status.incident else "none"
        key = f"{incident}/{decision.key}" if decision.key else rec.correlation_id
        first = await self.events.post_once(None, event, key)
        await self.store.save(status, "remediation")
        if escalating and first:
            await self.pager(status, event)
        return status

    async def _dry_run(
        self, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        rec = self._record(decision, now, ActionResult.DRY_RUN, status)
        message = f"would {decision.params.get('would', decision.action)}: {decision.reason}"
        await self.events.post_once(None, EventSpec("Normal", Reason.DRY_RUN, message),
                                    rec.correlation_id)  # fmt: skip
        return ledger.with_record(status, rec)

    async def _suppressed(
        self, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Say once (not every cycle) that a guardrail held an action back."""
        if ledger.already_suppressed(status, decision):
            return status
        rec = self._record(decision, now, ActionResult.SUPPRESSED, status)
        await self.events.post_once(
            None, EventSpec("Warning", Reason.REMEDIATION_SUPPRESSED, decision.reason),
            rec.correlation_id,
        )  # fmt: skip
        return ledger.with_record(status, rec)

    async def _held(self, status: VenueServiceStatus, decision: Decision) -> VenueServiceStatus:
        """No action while something is critical: say why, once per reason and incident."""
        critical = any(c.level is Level.CRITICAL for c in status.checks)
        if decision.held is None or not critical or status.incident is None:
            return status
        updated = ledger.hold(status, decision.held)
        if updated is None:
            return status
        event = EventSpec("Warning", Reason.REMEDIATION_HELD, decision.reason)
        await self.events.post_once(None, event, f"{status.incident.id}/held/{decision.held}")
        return updated

    async def _post_once(
        self, subject: Subject, action: Action, event: EventSpec, rid: str
    ) -> None:
        await self.events.post_once(None, event, rid)
        if action in ON_DEPLOYMENT and subject.deployment_ref is not None:
            await self.events.post_once(subject.deployment_ref, event, rid)


def severity_pages(severity: Severity | None) -> bool:
    return severity in (Severity.P1, Severity.P2)
