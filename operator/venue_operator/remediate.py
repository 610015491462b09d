"""Carry out a decision: write-ahead record -> act -> finish the record -> Events.

The record goes into status *before* the workload write (result InProgress), so
an operator killed mid-action finds it on restart and finishes it; every act
function is idempotent, so finishing never acts twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from kubernetes.aio import client

from venue_operator.act import ActError, ActResult, breaker, jobs, rollback, scale
from venue_operator.decide import Action, Decision
from venue_operator.model import (
    HISTORY_LIMIT,
    ActionRecord,
    ActionResult,
    IncidentEntry,
    Severity,
    VenueServiceSpec,
    VenueServiceStatus,
)
from venue_operator.record import EventSpec, add_timeline
from venue_operator.redact import redact

log = structlog.get_logger(__name__)

PAUSE_ANNOTATION = "ops.tickettoken.io/paused"
WHO = "venue-operator"
DONE_REASON = {
    Action.ROLL_BACK: "RolledBack",
    Action.SCALE_UP: "ScaledUp",
    Action.RUN_MIGRATION: "MigrationStarted",
    Action.OPEN_CIRCUIT: "CircuitOpened",
    Action.CLOSE_CIRCUIT: "CircuitClosed",
    Action.ESCALATE: "Escalated",
    Action.DIAGNOSE_RATE_LIMIT: "RateLimitDiagnosed",
}
WARNING_ACTIONS = {Action.ESCALATE, Action.OPEN_CIRCUIT, Action.DIAGNOSE_RATE_LIMIT}
# Actions whose effect lands on the Deployment: their Events go there too.
ON_DEPLOYMENT = {Action.ROLL_BACK, Action.SCALE_UP}


@dataclass(frozen=True)
class Target:
    """The objects one VenueService acts on and posts Events to."""

    namespace: str
    name: str
    spec: VenueServiceSpec
    deployment_ref: dict[str, Any] | None  # apiVersion/kind/metadata for Events


Poster = Callable[[dict[str, Any] | None, EventSpec], None]
StatusWriter = Callable[[VenueServiceStatus], Awaitable[None]]
Notifier = Callable[[VenueServiceStatus, EventSpec], Awaitable[None]]


def _record(decision: Decision, now: datetime, result: ActionResult) -> ActionRecord:
    assert decision.action is not None
    return ActionRecord(
        at=now,
        action=decision.action.value,
        reason=decision.reason[:2000],
        result=result,
        dry_run=decision.dry_run,
        correlation_id=f"{decision.action.value.lower()}-{uuid.uuid4().hex[:8]}",
        section=decision.section or None,
        inputs=dict(decision.params),
    )


def _with_record(status: VenueServiceStatus, rec: ActionRecord) -> VenueServiceStatus:
    """Add or replace (by correlation id) a history record, and keep last_action in step."""
    history = [r for r in status.history if r.correlation_id != rec.correlation_id]
    history = [*history, rec][-HISTORY_LIMIT:]
    updated = status.model_copy(update={"history": history, "last_action": rec})
    if status.incident is not None and rec.result is not ActionResult.IN_PROGRESS:
        entry = IncidentEntry(
            at=rec.at, severity=status.incident.severity,
            message=f"{rec.action} {rec.result}{' (dry run)' if rec.dry_run else ''}: {rec.reason}",
        )  # fmt: skip
        updated = updated.model_copy(update={"incident": add_timeline(status.incident, entry)})
    return updated


@dataclass
class Remediator:
    api: client.ApiClient
    post: Poster
    write_status: StatusWriter
    notify: Notifier | None = None
    pause_before_act: float = 0.0  # a fault-injection hook for crash tests; 0 in production

    async def finish_in_progress(
        self, target: Target, status: VenueServiceStatus, now: datetime
    ) -> VenueServiceStatus:
        """A record left InProgress (crash, or a running migration): complete it once."""
        pending = next(
            (r for r in reversed(status.history) if r.result is ActionResult.IN_PROGRESS), None
        )
        if pending is None:
            return status
        if pending.action == Action.RUN_MIGRATION:
            return await self._follow_migration(target, status, pending, now)
        decision = Decision(Action(pending.action), pending.reason, pending.section or "",
                            pending.inputs)  # fmt: skip
        log.info("remediation.resume", action=pending.action, id=pending.correlation_id)
        return await self._act_and_finish(target, status, decision, pending)

    async def carry_out(
        self, target: Target, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Record and (unless dry run, suppressed or event-only) perform the decision."""
        if decision.action is None:
            return status
        if decision.suppressed_by is not None:
            return self._suppressed(target, status, decision, now)
        if decision.dry_run:
            rec = _record(decision, now, ActionResult.DRY_RUN)
            self.post(
                None, EventSpec("Normal", "DryRun", f"would {decision.action}: {decision.reason}")
            )
            return _with_record(status, rec)
        if decision.action in (Action.ESCALATE, Action.DIAGNOSE_RATE_LIMIT):
            return await self._announce(target, status, decision, now)
        rec = _record(decision, now, ActionResult.IN_PROGRESS)
        status = _with_record(status, rec)
        if decision.action is Action.ROLL_BACK:
            # Never come back to a template we left because it was bad.
            bad = decision.params.get("fromTemplate")
            if bad and bad not in status.rolled_back_templates:
                status = status.model_copy(
                    update={"rolled_back_templates": [*status.rolled_back_templates, bad][-50:]}
                )
        await self.write_status(status)  # write-ahead: the intent survives a crash
        if self.pause_before_act:
            await asyncio.sleep(self.pause_before_act)
        return await self._act_and_finish(target, status, decision, rec)

    async def _act_and_finish(
        self, target: Target, status: VenueServiceStatus, decision: Decision, rec: ActionRecord
    ) -> VenueServiceStatus:
        try:
            result = await self._act(target, decision, rec.correlation_id)
        except (ActError, client.ApiException) as exc:
            message = redact(f"{decision.action} failed: {_error_text(exc)}")
            failed = rec.model_copy(
                update={"result": ActionResult.FAILED, "reason": message[:2000]}
            )
            self.post(None, EventSpec("Warning", "RemediationFailed", message))
            status = _with_record(status, failed)
            await self.write_status(status)
            return status
        if decision.action is Action.RUN_MIGRATION:
            # Stays InProgress until the Job finishes; _follow_migration closes it.
            job = jobs.job_name(decision.params.get("cronJob", ""), rec.correlation_id)
            rec = rec.model_copy(update={"inputs": {**rec.inputs, "job": job}})
            status = _with_record(status, rec)
        else:
            rec = rec.model_copy(update={"result": ActionResult.SUCCEEDED})
            status = _with_record(status, rec)
            status = _after_success(status, decision)
        action = Action(rec.action)
        kind = "Warning" if action in WARNING_ACTIONS else "Normal"
        event = EventSpec(kind, DONE_REASON[action], f"{decision.reason} ({result.message})")
        self._post_both(target, action, event)
        await self.write_status(status)
        return status

    async def _act(self, target: Target, decision: Decision, rid: str) -> ActResult:
        p, ns, spec = decision.params, target.namespace, target.spec
        deployment = spec.deployment.name
        cause = f"{WHO}: {decision.reason}"[:1000]
        policy = spec.remediation
        if decision.action is Action.ROLL_BACK:
            return await rollback.roll_back(self.api, ns, deployment, p["toTemplate"], cause, rid)
        if decision.action is Action.SCALE_UP:
            return await scale.scale_up(self.api, ns, deployment, int(p["toReplicas"]))
        if decision.action is Action.RUN_MIGRATION:
            return await jobs.run_migration(self.api, ns, p["cronJob"], rid, rid)
        if decision.action in (Action.OPEN_CIRCUIT, Action.CLOSE_CIRCUIT):
            cb = policy.circuit_breaker
            return await breaker.set_circuit(
                self.api, ns, cb.config_map_name, cb.key, decision.action is Action.OPEN_CIRCUIT,
                f"{WHO} ({target.namespace}/{target.name})", decision.reason,
            )  # fmt: skip
        raise ActError(f"no writer for {decision.action}")

    async def _follow_migration(
        self, target: Target, status: VenueServiceStatus, rec: ActionRecord, now: datetime
    ) -> VenueServiceStatus:
        job = rec.inputs.get("job")
        if job is None:  # crashed between the write-ahead and the create: create it now
            decision = Decision(Action.RUN_MIGRATION, rec.reason, rec.section or "", rec.inputs)
            return await self._act_and_finish(target, status, decision, rec)
        outcome = await jobs.job_outcome(self.api, target.namespace, job)
        timeout = target.spec.remediation.migration.timeout
        if outcome is None and now - rec.at <= timeout:
            return status
        outcome = outcome or "Failed"
        late = "" if outcome == "Succeeded" or now - rec.at <= timeout else " (timed out)"
        result = ActionResult.SUCCEEDED if outcome == "Succeeded" else ActionResult.FAILED
        status = _with_record(status, rec.model_copy(update={"result": result}))
        kind = "Normal" if result is ActionResult.SUCCEEDED else "Warning"
        reason = "MigrationSucceeded" if result is ActionResult.SUCCEEDED else "MigrationFailed"
        self.post(
            None,
            EventSpec(
                kind, reason, f"Job {job} {outcome.lower()}{late} [runbook: Database Operations]"
            ),
        )
        await self.write_status(status)
        return status

    async def _announce(
        self, target: Target, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Escalations and diagnoses: no workload write, an Event (and a page) only."""
        assert decision.action is not None
        rec = _record(decision, now, ActionResult.SUCCEEDED)
        status = _with_record(status, rec)
        if decision.action is Action.ESCALATE and status.incident is not None:
            escalated = status.incident.model_copy(update={"escalated": True})
            status = status.model_copy(update={"incident": escalated})
        event = EventSpec("Warning", DONE_REASON[decision.action], decision.reason)
        self.post(None, event)
        await self.write_status(status)
        if decision.action is Action.ESCALATE and self.notify is not None:
            await self.notify(status, event)
        return status

    def _suppressed(
        self, target: Target, status: VenueServiceStatus, decision: Decision, now: datetime
    ) -> VenueServiceStatus:
        """Say once (not every cycle) that a guardrail held an action back."""
        assert decision.action is not None
        last = status.history[-1] if status.history else None
        if (last and last.result is ActionResult.SUPPRESSED and last.action == decision.action
                and last.inputs.get("heldBy") == decision.suppressed_by):  # fmt: skip
            return status
        rec = _record(decision, now, ActionResult.SUPPRESSED)
        rec = rec.model_copy(
            update={"inputs": {**rec.inputs, "heldBy": decision.suppressed_by or ""}}
        )
        self.post(None, EventSpec("Warning", "RemediationSuppressed", decision.reason))
        return _with_record(status, rec)

    def _post_both(self, target: Target, action: Action, event: EventSpec) -> None:
        self.post(None, event)
        if action in ON_DEPLOYMENT and target.deployment_ref is not None:
            self.post(target.deployment_ref, event)


def _after_success(status: VenueServiceStatus, decision: Decision) -> VenueServiceStatus:
    if decision.action is Action.OPEN_CIRCUIT:
        return status.model_copy(update={"circuit_open": True})
    if decision.action is Action.CLOSE_CIRCUIT:
        return status.model_copy(update={"circuit_open": False})
    return status


def _error_text(exc: Exception) -> str:
    if isinstance(exc, client.ApiException):
        return f"API {exc.status} {exc.reason}"
    return str(exc)


def severity_pages(severity: Severity | None) -> bool:
    return severity in (Severity.P1, Severity.P2)
