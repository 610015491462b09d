"""A decision as workload writes: which act of the `Acts` port, with which arguments. The
rollout guard's rollback pauses the rollout first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from venue_operator.act import ActError, ActResult
from venue_operator.decide.decision import Action, Decision
from venue_operator.model.reasons import Reason
from venue_operator.model.status import ScaledKind
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Acts, Subject

WHO = "venue-operator"
# Posts an Event of the action once by key (on the VenueService, and its Deployment).
PostOnce = Callable[[EventSpec, str], Awaitable[None]]


async def perform(
    acts: Acts, subject: Subject, decision: Decision, rid: str, post: PostOnce
) -> ActResult:
    """Write what `decision` asks; ActError when it cannot be done."""
    p, ns, spec = decision.params, subject.namespace, subject.spec
    deployment = spec.deployment.name
    cause = f"{WHO}: {decision.reason}"[:1000]
    if decision.action is Action.ROLL_BACK and p.get("pauseFirst") == "true":
        return await _pause_and_roll_back(acts, subject, decision, cause, rid, post)
    if decision.action is Action.ROLL_BACK:
        return await acts.roll_back(ns, deployment, p["toTemplate"], cause, rid)
    if decision.action in (Action.SCALE_UP, Action.SCALE_BACK):
        return await _scale(acts, ns, deployment, decision)
    if decision.action is Action.RUN_MIGRATION:
        return await acts.run_migration(ns, p["cronJob"], rid)
    if decision.action in (Action.OPEN_CIRCUIT, Action.CLOSE_CIRCUIT):
        cb = spec.remediation.circuit_breaker
        return await acts.set_circuit(
            ns, cb.config_map_name, cb.key, decision.action is Action.OPEN_CIRCUIT,
            f"{WHO} ({subject.namespace}/{subject.name})", decision.reason,
        )  # fmt: skip
    raise ActError(f"no writer for {decision.action}")


async def _scale(acts: Acts, ns: str, deployment: str, decision: Decision) -> ActResult:
    """Up: the Deployment's replicas, or its HPA's / ScaledObject's minimum (the original
    kept in an annotation there); back: only over the value the operator wrote."""
    p = decision.params
    kind = ScaledKind(p.get("scaleKind", ScaledKind.DEPLOYMENT))
    to = int(p["toReplicas"])
    if decision.action is Action.SCALE_UP and kind is ScaledKind.DEPLOYMENT:
        # The Deployment's loan is kept in status only: no annotation on it.
        return await acts.set_count(ns, ScaledKind.DEPLOYMENT, deployment, to, None)
    original = int(p["originalReplicas"])  # decide sets it with every scaleKind
    if decision.action is Action.SCALE_UP:
        return await acts.set_count(ns, kind, p["scaleName"], to, original)
    keep = None if to <= original or kind is ScaledKind.DEPLOYMENT else original
    return await acts.set_count(ns, kind, p["scaleName"], to, keep,
                                expect=int(p["fromReplicas"]))  # fmt: skip


async def _pause_and_roll_back(
    acts: Acts, subject: Subject, decision: Decision, cause: str, rid: str, post: PostOnce
) -> ActResult:
    """The rollout guard's: stop the rollout at once, then roll back and resume in one
    guarded write (both idempotent: a crash in between is finished by the rerun)."""
    deployment = subject.spec.deployment.name
    paused = await acts.pause_rollout(subject.namespace, deployment, rid)
    if paused.changed:
        await post(EventSpec("Warning", Reason.ROLLOUT_PAUSED, decision.reason), f"{rid}/paused")
    to = decision.params["toTemplate"]
    return await acts.roll_back(subject.namespace, deployment, to, cause, rid, True)
