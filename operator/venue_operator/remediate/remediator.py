"""Carry out a decision: write-ahead record -> act -> finish the record -> Events.

The record goes into status *before* the workload write (result InProgress), so an
operator killed mid-action finds it on restart and finishes it; every act is
idempotent, so finishing never acts twice. Status changes are the ledger's (pure, one
call per outcome); this module only orders them around the writes, through the ports
(ports.py): the workload writer, the status store, the Events and the pager. An
action's Events are posted once by name, however often a failed status write makes the
cycle repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from venue_operator.act import ActError
from venue_operator.decide.decision import P1_SECTION, WORKLOAD_ACTIONS, Action, Decision
from venue_operator.fleet.rate import Rate
from venue_operator.incident.impact import with_impact_line
from venue_operator.model.reasons import DB_OPERATIONS, Reason
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    Level,
    VenueServiceStatus,
)
from venue_operator.record import ledger, outbox
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate import writes
from venue_operator.remediate.gitops_follow import follow_gitops
from venue_operator.remediate.ports import Acts, Events, GitOpsActs, Store, Subject
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)

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


def correlation_id(action: Action) -> str:
    return f"{action.value.lower()}-{uuid.uuid4().hex[:8]}"


@dataclass
class Remediator:
    acts: Acts
    events: Events
    store: Store
    new_id: Callable[[Action], str] = correlation_id
    gitops: GitOpsActs | None = None
    fleet: Rate | None = None  # the fleet-wide action rate, shared by every loop

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
        return await self._act_and_finish(subject, status, decision, pending, resumed=True)

    async def carry_out(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Record and (unless dry run, suppressed or event-only) perform the decision."""
        if decision.action is None:
            return await self._held(subject, status, decision, now)
        rid = self.new_id(decision.action)
        if decision.suppressed_by is not None:
            return await self._suppressed(status, decision, now, rid)
        if decision.dry_run:
            return await self._dry_run(status, decision, now, rid)
        if decision.action in (Action.ESCALATE, Action.DIAGNOSE_RATE_LIMIT):
            return await self._announce(subject, status, decision, now, rid)
        if decision.action in WORKLOAD_ACTIONS and self.fleet is not None \
                and not self.fleet.take():  # fmt: skip
            return await self._fleet_held(subject, status, decision, now, rid)
        if decision.action is Action.ABANDON_RESTORE:
            return await self._announce(subject, ledger.abandon_restore(status), decision, now, rid)
        status, rec = ledger.started(status, decision, now, rid)
        await self.store.save(status, "remediation")  # write-ahead: the intent survives a crash
        return await self._act_and_finish(subject, status, decision, rec)

    async def _act_and_finish(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, rec: ActionRecord,
        resumed: bool = False,
    ) -> VenueServiceStatus:  # fmt: skip
        action, rid = Action(rec.action), rec.correlation_id

        async def post(event: EventSpec, key: str) -> None:
            await self._post_once(subject, action, event, key)

        try:
            result = await writes.perform(self.acts, subject, decision, rid, post)
        except ActError as exc:
            return await self._failed(subject, status, rec, exc)
        if resumed and not result.changed:  # the write this record announced, made before
            result = replace(result, message=f"{result.message}: our own write, made before "
                                             "the operator restarted")  # fmt: skip
        # A migration stays InProgress, following the Job the act names, until it ends.
        status = ledger.succeeded(status, rec, result.job)
        note = ""
        if action is Action.ROLL_BACK and subject.gitops is not None:
            status, note = await follow_gitops(self.gitops, self.events, subject, status, rec)
        kind = "Warning" if action in WARNING_ACTIONS else "Normal"
        event = EventSpec(kind, DONE_REASON[action], f"{decision.reason} ({result.message}){note}")
        if note:  # a human must act before the next sync: page, with the incident
            status = self._page(subject, status, event, f"{Reason.ROLLED_BACK}:{rid}", rec.at)
        await post(event, rid)
        await self.store.save(status, "remediation")
        return status

    async def _failed(
        self, subject: Subject, status: VenueServiceStatus, rec: ActionRecord, exc: ActError
    ) -> VenueServiceStatus:
        """A refused or impossible write: record it, say it, and hand over to humans now
        (the cooldown would otherwise hold the next attempt for minutes, in silence)."""
        message = redact(f"{rec.action} failed: {exc}")
        log.warning("remediation.failed", namespace=subject.namespace, name=subject.name,
                    action=rec.action, id=rec.correlation_id, error=message)  # fmt: skip
        status = ledger.failed(status, rec, message)
        await self.events.post_once(None, EventSpec("Warning", Reason.REMEDIATION_FAILED, message),
                                    rec.correlation_id)  # fmt: skip
        escalation = Decision(
            Action.ESCALATE, f"{message}; the cooldown holds another attempt: a human must act",
            P1_SECTION, {"after": rec.action, "correlationId": rec.correlation_id},
            key=f"failed:{rec.correlation_id}",
        )  # fmt: skip
        return await self._announce(
            subject, status, escalation, rec.at, self.new_id(Action.ESCALATE)
        )

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
        success = outcome == "Succeeded"
        status = ledger.migration_ended(status, rec, success)
        kind = "Normal" if success else "Warning"
        reason = Reason.MIGRATION_SUCCEEDED if success else Reason.MIGRATION_FAILED
        message = f"Job {job} {outcome.lower()}{late} [runbook: {DB_OPERATIONS}]"
        await self.events.post_once(None, EventSpec(kind, reason, message), rec.correlation_id)
        await self.store.save(status, "remediation")
        return status

    async def _announce(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, now: datetime,
        rid: str,
    ) -> VenueServiceStatus:  # fmt: skip
        """Escalations and diagnoses: no workload write, an Event (and a page) once."""
        assert decision.action is not None
        status, rec = ledger.announced(status, decision, now, rid)
        escalating = decision.action is Action.ESCALATE
        reason = decision.event_reason or DONE_REASON[decision.action]
        event = EventSpec("Warning", reason, decision.reason)
        if escalating:
            event = replace(event, message=with_impact_line(event.message, status))
        incident = status.incident.id if status.incident else "none"
        key = f"{incident}/{decision.key}" if decision.key else rec.correlation_id
        if escalating:
            status = self._page(subject, status, event, decision.key or rid, now)
        await self.events.post_once(None, event, key)
        await self.store.save(status, "remediation")
        return status

    @staticmethod
    def _page(
        subject: Subject, status: VenueServiceStatus, event: EventSpec, key: str, now: datetime
    ) -> VenueServiceStatus:
        """The page in the outbox of the status about to be written (the loop sends it)."""
        if not outbox.pages_to_webhook(subject.spec):
            return status
        return outbox.on_escalation(status, subject.source, event, key, now)

    async def _fleet_held(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, now: datetime,
        rid: str,
    ) -> VenueServiceStatus:  # fmt: skip
        """The fleet's action rate is used up: held, and a human told once per incident."""
        assert self.fleet is not None and decision.action is not None
        why = (f"{decision.reason}; held: {self.fleet.describe()} is used up (many services "
               "acting at once)")  # fmt: skip
        incident = status.incident
        if incident is not None and "fleet-rate" not in incident.escalations:
            escalation = Decision(
                Action.ESCALATE, f"{why}: a human must act", P1_SECTION,
                {"held": decision.action.value, "heldBy": "fleet-rate"}, key="fleet-rate",
            )  # fmt: skip
            return await self._announce(subject, status, escalation, now,
                                        self.new_id(Action.ESCALATE))  # fmt: skip
        held = replace(decision, suppressed_by="fleet-rate", reason=why)
        return await self._suppressed(status, held, now, rid)

    async def _dry_run(
        self, status: VenueServiceStatus, decision: Decision, now: datetime, rid: str
    ) -> VenueServiceStatus:
        message = f"would {decision.params.get('would', decision.action)}: {decision.reason}"
        await self.events.post_once(None, EventSpec("Normal", Reason.DRY_RUN, message), rid)
        return ledger.dry_run(status, decision, now, rid)

    async def _suppressed(
        self, status: VenueServiceStatus, decision: Decision, now: datetime, rid: str
    ) -> VenueServiceStatus:
        """Say once (not every cycle) that a guardrail held an action back."""
        updated = ledger.suppressed(status, decision, now, rid)
        if updated is None:
            return status
        event = EventSpec("Warning", Reason.REMEDIATION_SUPPRESSED, decision.reason)
        await self.events.post_once(None, event, rid)
        return updated

    async def _held(
        self, subject: Subject, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """No action while something is critical: say why, once per reason and incident."""
        critical = any(c.level is Level.CRITICAL for c in status.checks)
        if decision.held is None or not critical or status.incident is None:
            return status
        updated = ledger.held(status, decision.held)
        if updated is None:
            return status
        event = EventSpec("Warning", Reason.REMEDIATION_HELD, decision.reason)
        await self.events.post_once(None, event, f"{status.incident.id}/held/{decision.held}")
        if decision.pages:  # e.g. a failing release that waits: the on-call hears which
            updated = self._page(subject, updated, event, decision.held, now)
        return updated

    async def _post_once(
        self, subject: Subject, action: Action, event: EventSpec, rid: str
    ) -> None:
        await self.events.post_once(None, event, rid)
        if action in ON_DEPLOYMENT and subject.deployment_ref is not None:
            await self.events.post_once(subject.deployment_ref, event, rid)
