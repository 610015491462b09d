"""The action ledger: what an action, an escalation or a page does to status. Pure.

`status.history` holds the last actions (written ahead of every workload write, so a
crash cannot lose one); the open incident keeps its timeline and the keys of what was
said once per incident (escalations, pages, reasons for holding back), so that neither
a restart nor a retried status write says it twice.

One call per outcome of a decision, so that the remediator reads top-down: `started`
(the write-ahead record) then `succeeded` or `failed`; `migration_ended`; `announced`
(escalations and diagnoses); `dry_run`; `suppressed`; `held`; `paged`; `abandon_restore`.
"""

from __future__ import annotations

from datetime import datetime

from venue_operator.decide import capacity
from venue_operator.decide.decision import Action, Decision, action_line
from venue_operator.model.status import (
    HISTORY_LIMIT,
    SECTION_CHARS,
    ActionRecord,
    ActionResult,
    Incident,
    IncidentEntry,
    ScaledKind,
    Severity,
    VenueServiceStatus,
)
from venue_operator.record.transitions import add_timeline

ONCE_LIMIT = 50  # keys kept per incident (Incident.escalations/pages/held hold 50)


# --- one call per outcome ---------------------------------------------------------------


def started(
    status: VenueServiceStatus, decision: Decision, now: datetime, rid: str
) -> tuple[VenueServiceStatus, ActionRecord]:
    """A workload action about to be written: its record, InProgress, goes into status first
    (write-ahead); a rollback marks the template it leaves, a scale-up what it lends."""
    rec = _new_record(decision, now, ActionResult.IN_PROGRESS, rid, status.severity)
    return _begin(status, rec), rec


def succeeded(
    status: VenueServiceStatus, rec: ActionRecord, job: str | None = None
) -> VenueServiceStatus:
    """The workload write is done. A migration (`job`) stays InProgress, following its Job,
    until `migration_ended`."""
    if job is not None:
        return _with_record(status, rec.model_copy(update={"inputs": {**rec.inputs, "job": job}}))
    return _finish(status, rec, ActionResult.SUCCEEDED)


def failed(status: VenueServiceStatus, rec: ActionRecord, message: str) -> VenueServiceStatus:
    """The write was refused or impossible: the record says what was refused."""
    return _finish(status, rec, ActionResult.FAILED, message)


def migration_ended(
    status: VenueServiceStatus, rec: ActionRecord, success: bool
) -> VenueServiceStatus:
    return _finish(status, rec, ActionResult.SUCCEEDED if success else ActionResult.FAILED)


def announced(
    status: VenueServiceStatus, decision: Decision, now: datetime, rid: str
) -> tuple[VenueServiceStatus, ActionRecord]:
    """An escalation or a diagnosis (no workload write), done as it is said; an escalation
    marks the open incident escalated, once per cause (`decision.key`)."""
    rec = _new_record(decision, now, ActionResult.SUCCEEDED, rid, status.severity)
    status = _with_record(status, rec)
    if decision.action is Action.ESCALATE:
        status = _escalate(status, decision.key or rid)
    return status, rec


def dry_run(
    status: VenueServiceStatus, decision: Decision, now: datetime, rid: str
) -> VenueServiceStatus:
    """What would have been done, recorded as such (DryRun mode)."""
    return _with_record(status, _new_record(decision, now, ActionResult.DRY_RUN, rid,
                                            status.severity))  # fmt: skip


def suppressed(
    status: VenueServiceStatus, decision: Decision, now: datetime, rid: str
) -> VenueServiceStatus | None:
    """A guardrail held the action back: recorded once (None when the last record says so)."""
    if _already_suppressed(status, decision):
        return None
    rec = _new_record(decision, now, ActionResult.SUPPRESSED, rid, status.severity)
    return _with_record(status, rec)


def abandon_restore(status: VenueServiceStatus) -> VenueServiceStatus:
    """Somebody else wrote the lent field: it is theirs now, nothing is given back."""
    return status.model_copy(update={"capacity": None})


def held(status: VenueServiceStatus, key: str) -> VenueServiceStatus | None:
    """Record that the reason `key` for holding back was given (said once per incident), or
    None if it was."""
    incident = status.incident
    updated = _once(incident, "held", key) if incident is not None else None
    return None if updated is None else status.model_copy(update={"incident": updated})


def paged(status: VenueServiceStatus, key: str) -> VenueServiceStatus | None:
    """Record the page `key` (record/outbox.py: "trigger:P2", "escalation:<key>") as said in
    the open incident, or None if it was."""
    incident = status.incident
    updated = _once(incident, "pages", key) if incident is not None else None
    return None if updated is None else status.model_copy(update={"incident": updated})


# --- how each outcome changes status ------------------------------------------------------


def _new_record(
    decision: Decision, now: datetime, result: ActionResult, rid: str, severity: Severity | None
) -> ActionRecord:
    """A history record for `decision`; the severity it was taken at is kept, so that a
    cooldown can tell a worsening incident from a waiting one."""
    assert decision.action is not None
    inputs = dict(decision.params)
    if severity is not None:
        inputs["severity"] = str(severity)
    if decision.suppressed_by is not None:
        inputs["heldBy"] = decision.suppressed_by
    return ActionRecord(
        at=now, action=decision.action.value, reason=decision.reason[:2000], result=result,
        dry_run=decision.dry_run, correlation_id=rid, section=decision.section or None,
        inputs=inputs,
    )  # fmt: skip


def _with_record(status: VenueServiceStatus, rec: ActionRecord) -> VenueServiceStatus:
    """Add or replace (by correlation id) a history record, and keep last_action in step;
    a finished record also goes into the open incident's timeline."""
    history = [r for r in status.history if r.correlation_id != rec.correlation_id]
    history = [*history, rec][-HISTORY_LIMIT:]
    updated = status.model_copy(update={"history": history, "last_action": rec})
    if status.incident is not None and rec.result is not ActionResult.IN_PROGRESS:
        message = action_line(rec.action, rec.result, rec.reason, rec.dry_run)[:2000]
        section = (rec.section or "")[:SECTION_CHARS] or None  # for the post-mortem, later
        entry = IncidentEntry(at=rec.at, severity=status.incident.severity, message=message,
                              section=section, action=rec.action, result=rec.result)  # fmt: skip
        updated = updated.model_copy(update={"incident": add_timeline(status.incident, entry)})
    return updated


def _begin(status: VenueServiceStatus, rec: ActionRecord) -> VenueServiceStatus:
    """The write-ahead record; a rollback also marks the template it leaves, for good."""
    status = _with_record(status, rec)
    bad = rec.inputs.get("fromTemplate") if rec.action == Action.ROLL_BACK else None
    if bad and bad not in status.rolled_back_templates:
        kept = [*status.rolled_back_templates, bad][-HISTORY_LIMIT:]
        status = status.model_copy(update={"rolled_back_templates": kept})
    if rec.action == Action.SCALE_UP and "scaleKind" in rec.inputs:
        # The original size is in status before the write: a crash cannot lose it.
        kind, name = ScaledKind(rec.inputs["scaleKind"]), rec.inputs["scaleName"]
        start = int(rec.inputs["fromReplicas"])
        loan = capacity.lend(status.capacity, kind, name, start, rec.at)
        status = status.model_copy(update={"capacity": loan})
    return status


def _finish(
    status: VenueServiceStatus, rec: ActionRecord, result: ActionResult, message: str = ""
) -> VenueServiceStatus:
    """Close a record; a failure's message replaces its reason (it says what was refused)."""
    update: dict[str, object] = {"result": result}
    if result is ActionResult.FAILED and message:
        update["reason"] = message[:2000]
    status = _with_record(status, rec.model_copy(update=update))
    if result is ActionResult.SUCCEEDED and not rec.dry_run:
        status = _mitigated(status, rec)
    if result is ActionResult.SUCCEEDED and rec.action in (
        Action.OPEN_CIRCUIT,
        Action.CLOSE_CIRCUIT,
    ):
        status = status.model_copy(update={"circuit_open": rec.action == Action.OPEN_CIRCUIT})
    lent = rec.action in (Action.SCALE_UP, Action.SCALE_BACK) and "scaleKind" in rec.inputs
    if result is ActionResult.SUCCEEDED and lent:
        loan = capacity.after_write(status.capacity, ScaledKind(rec.inputs["scaleKind"]),
                                    rec.inputs["scaleName"], int(rec.inputs["toReplicas"]),
                                    rec.at)  # fmt: skip
        status = status.model_copy(update={"capacity": loan})
    elif result is ActionResult.FAILED and lent:
        status = status.model_copy(update={"capacity": capacity.nothing_lent(status.capacity)})
    return status


MITIGATIONS = {Action.ROLL_BACK, Action.SCALE_UP, Action.RUN_MIGRATION, Action.OPEN_CIRCUIT}


def _mitigated(status: VenueServiceStatus, rec: ActionRecord) -> VenueServiceStatus:
    """The open incident's first workload action that succeeded (its TTM ends there)."""
    incident = status.incident
    if incident is None or incident.resolved_at is not None or incident.mitigated_at is not None:
        return status
    if rec.action not in MITIGATIONS:
        return status
    mitigated = incident.model_copy(update={"mitigated_at": rec.at})
    return status.model_copy(update={"incident": mitigated})


def _already_suppressed(status: VenueServiceStatus, decision: Decision) -> bool:
    """The last record already says this guardrail holds this action (said once)."""
    last = status.history[-1] if status.history else None
    return (
        last is not None
        and last.result is ActionResult.SUPPRESSED
        and last.action == decision.action
        and last.inputs.get("heldBy") == decision.suppressed_by
    )


def _once(incident: Incident, field: str, key: str) -> Incident | None:
    """The incident with `key` added to one of its say-once lists, or None if said."""
    said: list[str] = getattr(incident, field)
    if key in said:
        return None
    return incident.model_copy(update={field: [*said, key][-ONCE_LIMIT:]})


def _escalate(status: VenueServiceStatus, key: str) -> VenueServiceStatus:
    """Mark the open incident escalated for `key` (decide makes each key once)."""
    if status.incident is None:
        return status
    incident = _once(status.incident, "escalations", key) or status.incident
    return status.model_copy(update={"incident": incident.model_copy(update={"escalated": True})})
