"""A decision's vocabulary, pure: the actions, a Decision, and how the history is read.

A Decision is at most one action, with a reason that names the runbook section and the
numbers; no action says why (`held`, said once per incident), an escalation names its cause
(`key`, made once per incident: guardrails.escalate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from venue_operator.model.reasons import Reason
from venue_operator.model.status import ActionRecord, ActionResult

ROLLBACK_SECTION = "Rollback Procedure"
P1_SECTION = "P1 Procedure"


class Action(StrEnum):
    ROLL_BACK = "RollBack"
    SCALE_UP = "ScaleUp"
    RUN_MIGRATION = "RunMigration"
    OPEN_CIRCUIT = "OpenCircuit"
    CLOSE_CIRCUIT = "CloseCircuit"
    ESCALATE = "Escalate"
    DIAGNOSE_RATE_LIMIT = "DiagnoseRateLimit"
    SCALE_BACK = "ScaleBack"  # give back capacity lent in an incident (capacity.py)
    ABANDON_RESTORE = "AbandonRestore"  # somebody else owns the lent field now


# Each action as an on-call engineer says it (timelines, the post-mortem).
SPOKEN: dict[str, str] = {
    Action.ROLL_BACK: "rollback", Action.SCALE_UP: "scale-up",
    Action.RUN_MIGRATION: "migration run", Action.OPEN_CIRCUIT: "circuit opened",
    Action.CLOSE_CIRCUIT: "circuit closed", Action.ESCALATE: "escalation",
    Action.DIAGNOSE_RATE_LIMIT: "rate-limit diagnosis", Action.SCALE_BACK: "scale-back",
    Action.ABANDON_RESTORE: "capacity restore abandoned",
}  # fmt: skip


RESULT_WORDS = {ActionResult.IN_PROGRESS: "in progress", ActionResult.SUCCEEDED: "succeeded",
                ActionResult.FAILED: "failed", ActionResult.DRY_RUN: "decided (dry run)",
                ActionResult.SUPPRESSED: "held back"}  # fmt: skip


def action_line(action: str, result: ActionResult, reason: str, dry_run: bool = False) -> str:
    """An action as the incident's timeline says it: `rollback succeeded: <why>`."""
    dry = " (dry run)" if dry_run and result is not ActionResult.DRY_RUN else ""
    return f"{spoken(action)} {RESULT_WORDS[result]}{dry}: {reason}"


def spoken(action: str) -> str:
    """`RollBack` -> `rollback`; an unknown name as it is."""
    return SPOKEN.get(action, action)  # Action is a StrEnum: "RollBack" finds it


# Actions that write a workload: they are verified, cooled down and budgeted.
WORKLOAD_ACTIONS = {Action.ROLL_BACK, Action.SCALE_UP, Action.RUN_MIGRATION, Action.SCALE_BACK}
PROTECTIVE_ACTIONS = {Action.OPEN_CIRCUIT, Action.CLOSE_CIRCUIT}


@dataclass(frozen=True)
class Decision:
    action: Action | None
    reason: str
    section: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    suppressed_by: str | None = None  # "cooldown", "budget", ... when an action was held back
    # No action although something may be critical: a stable key for "why", said once.
    held: str | None = None
    pages: bool = False  # a hold the on-call must hear of (paged once, with the incident's key)
    # An escalation's cause, kept in the incident so that it is made (and paged) once.
    key: str | None = None
    # The Event reason when it is not the action's usual one (remediate.DONE_REASON).
    event_reason: Reason | None = None


def no_action(reason: str, held: str | None = None) -> Decision:
    return Decision(None, reason, held=held)


# Attempts count, failed ones too: a write that keeps failing must not be retried every cycle.
ATTEMPTED = {
    ActionResult.SUCCEEDED,
    ActionResult.IN_PROGRESS,
    ActionResult.DRY_RUN,
    ActionResult.FAILED,
}


EFFECTIVE = ATTEMPTED - {ActionResult.FAILED}  # what a verification window waits on


def last_record(
    history: Sequence[ActionRecord], actions: set[Action], counted: set[ActionResult] = ATTEMPTED
) -> ActionRecord | None:
    """The newest record of one of `actions` whose result counts."""
    for record in reversed(history):
        if record.action in actions and record.result in counted:
            return record
    return None
