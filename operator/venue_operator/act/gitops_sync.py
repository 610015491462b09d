"""Suspend (and resume) the Flux Kustomization/HelmRelease or the Argo CD Application that
re-applies a Deployment we rolled back, guarded by resourceVersion like every act.

Flux: `spec.suspend: true`. Argo CD: `spec.syncPolicy.automated` removed (manual sync
stays possible). What was changed and the value before are kept in an annotation on the
object (keys.GITOPS_SUSPENDED), so that a rerun finds it done and `resume` can undo exactly
that, and only if nobody changed the field since.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from venue_operator.act import ActError, ActResult
from venue_operator.act.retry import retry_conflicts
from venue_operator.decide import gitops
from venue_operator.kube import calls
from venue_operator.model import keys
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.status import GitOpsSuspension

Ops = list[dict[str, Any]]


@dataclass(frozen=True)
class Plan:
    ops: Ops | None  # None: nothing to write
    message: str
    suspension: GitOpsSuspension | None = None  # what is (now) suspended by us


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _ours(obj: dict[str, Any]) -> dict[str, Any] | None:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(keys.GITOPS_SUSPENDED)
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _suspension(ref: GitOpsRef, record: dict[str, Any]) -> GitOpsSuspension:
    return GitOpsSuspension(
        at=datetime.fromisoformat(str(record["at"])), correlation_id=str(record["correlationId"]),
        object=gitops.as_object(ref), change=str(record["change"])[:256],
        previous=str(record["previous"])[:4096] if record.get("previous") is not None else None,
    )  # fmt: skip


def plan_suspend(ref: GitOpsRef, obj: dict[str, Any], who: str, rid: str, now: datetime) -> Plan:
    """The JSON patch that suspends `obj` and records how (pure)."""
    ours = _ours(obj)
    if ours is not None:
        try:
            suspension = _suspension(ref, ours)
        except (KeyError, ValueError, TypeError):
            raise ActError(f"{ref} carries an unreadable {keys.GITOPS_SUSPENDED}") from None
        return Plan(None, f"{ref} already suspended by {ours.get('by')}", suspension)
    spec = _spec(obj)
    if ref.kind == gitops.APPLICATION:
        automated = (spec.get("syncPolicy") or {}).get("automated")
        if not isinstance(automated, dict) or automated.get("enabled") is False:
            return Plan(None, f"{ref} has no automated sync: nothing to suspend")
        op: dict[str, Any] = {"op": "remove", "path": "/spec/syncPolicy/automated"}
        change = "spec.syncPolicy.automated removed"
        previous: str | None = json.dumps(automated)
    else:
        if spec.get("suspend") is True:
            return Plan(None, f"{ref} already suspended (not by the operator)")
        previous = json.dumps(spec["suspend"]) if "suspend" in spec else None
        op = {"op": "add", "path": "/spec/suspend", "value": True}
        change = f"spec.suspend: {previous or 'unset'} -> true"
    record = {"by": who, "correlationId": rid, "at": now.isoformat(), "change": change,
              "previous": previous}  # fmt: skip
    annotation = calls.set_annotation_op(obj, keys.GITOPS_SUSPENDED, json.dumps(record))
    ops = [calls.resource_version_test(obj), op, annotation]
    return Plan(ops, f"{ref} suspended ({change})", _suspension(ref, record))


def plan_resume(ref: GitOpsRef, obj: dict[str, Any]) -> Plan:
    """The JSON patch that undoes our suspension, if the field is still as we left it (pure)."""
    ours = _ours(obj)
    if ours is None:
        return Plan(None, f"{ref} is not suspended by the operator: nothing to resume")
    previous = ours.get("previous")
    spec = _spec(obj)
    ops: Ops = [calls.resource_version_test(obj)]
    if ref.kind == gitops.APPLICATION:
        policy = spec.get("syncPolicy")
        still = not isinstance(policy, dict) or policy.get("automated") is None
        automated = json.loads(previous) if isinstance(previous, str) else None
        if still and isinstance(automated, dict):
            ops.append({"op": "add", "path": "/spec/syncPolicy/automated", "value": automated}
                       if isinstance(policy, dict) else
                       {"op": "add", "path": "/spec/syncPolicy",
                        "value": {"automated": automated}})  # fmt: skip
        restored = "spec.syncPolicy.automated restored"
    else:
        still = spec.get("suspend") is True
        if still:
            ops.append({"op": "remove", "path": "/spec/suspend"} if previous is None else
                       {"op": "replace", "path": "/spec/suspend",
                        "value": json.loads(previous)})  # fmt: skip
        restored = f"spec.suspend restored to {previous or 'unset'}"
    ops.append({"op": "remove", "path": calls.annotation_path(keys.GITOPS_SUSPENDED)})
    if not still:
        return Plan(ops, f"{ref}: the field was changed since the suspension (by someone "
                         "else): left as is, our record removed")  # fmt: skip
    return Plan(ops, f"{ref} resumed ({restored})")


async def _write(api: calls.Api, ref: GitOpsRef, plan: Callable[[dict[str, Any]], Plan],
                 doing: str) -> tuple[bool, Plan]:  # fmt: skip
    """Read `ref`, plan, patch; re-read and re-plan when someone wrote in between. True: written."""

    async def attempt() -> tuple[bool, Plan]:
        resource = gitops.API[ref.kind]
        planned = plan(await calls.get_custom(api, resource, ref.namespace, ref.name))
        if planned.ops is None:
            return False, planned
        await calls.patch_custom(api, resource, ref.namespace, ref.name, planned.ops)
        return True, planned

    return await retry_conflicts(attempt, f"{doing} {ref}")


async def suspend(
    api: calls.Api, ref: GitOpsRef, namespace: str, deployment: str, who: str, rid: str,
    now: datetime,
) -> tuple[ActResult, GitOpsSuspension | None]:  # fmt: skip
    """Suspend `ref` for the Deployment `namespace/deployment`, if the trust rule allows it."""

    def plan(obj: dict[str, Any]) -> Plan:
        refused = gitops.refusal(ref, obj, namespace, deployment)
        if refused is not None:
            raise ActError(refused)
        return plan_suspend(ref, obj, who, rid, now)

    changed, done = await _write(api, ref, plan, "suspending")
    return ActResult(changed, done.message), done.suspension


async def resume(api: calls.Api, ref: GitOpsRef) -> ActResult:
    """Undo our suspension of `ref` (idempotent: nothing to do once undone, or once the
    object is gone: a deleted Kustomization suspends nothing, and its suspension must not
    stay in status for ever)."""
    try:
        changed, done = await _write(api, ref, lambda obj: plan_resume(ref, obj), "resuming")
    except calls.ApiError as exc:
        if exc.status != 404:
            raise
        return ActResult(False, f"{ref} not found: nothing to resume")
    return ActResult(changed, done.message)
