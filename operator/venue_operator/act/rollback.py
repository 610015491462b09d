"""Roll a Deployment back with `kubectl rollout undo` semantics, guarded by resourceVersion.

As kubectl (polymorphichelpers/rollback.go): the target ReplicaSet must be selected
and controlled by the Deployment; its pod template, minus `pod-template-hash`,
replaces the Deployment's; the Deployment's annotations become the ReplicaSet's
(except the rollout's own bookkeeping, which the Deployment keeps). Unlike
kubectl we add a resourceVersion test (no lost update), retry on conflict, and
say who and why in `kubernetes.io/change-cause`.
"""

from __future__ import annotations

import copy
from typing import Any

from venue_operator.act import ActError, ActResult
from venue_operator.act.retry import retry_conflicts
from venue_operator.kube import calls
from venue_operator.model import keys

HASH_LABEL = keys.HASH_LABEL
ANNOTATIONS_TO_SKIP = {  # kubectl's: the rollout's own bookkeeping stays the Deployment's
    keys.LAST_APPLIED,
    keys.REVISION,
    keys.REVISION_HISTORY,
    keys.DESIRED_REPLICAS,
    keys.MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    labels = out.get("metadata", {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return out


def _owned_by(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
    uid = deployment["metadata"]["uid"]
    refs = rs["metadata"].get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def _selected_by(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
    wanted = deployment["spec"]["selector"].get("matchLabels") or {}
    labels = rs["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def plan(
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    to_hash: str,
    cause: str,
    rid: str,
    resume: bool = False,
) -> list[dict[str, Any]] | None:
    """The JSON patch for the rollback, or None when the template already matches.

    `resume`: the rollout guard paused it (keys.PAUSED_BY_GUARD); the same write resumes it.
    A pause by anyone else is refused: a human is holding that rollout."""
    paused = bool(deployment["spec"].get("paused"))
    ours = keys.PAUSED_BY_GUARD in (deployment["metadata"].get("annotations") or {})
    if paused and not (resume and ours):
        raise ActError("the Deployment is paused: resume it before rolling back")
    target = next(
        (
            rs for rs in replicasets
            if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == to_hash
            and _owned_by(rs, deployment) and _selected_by(rs, deployment)
        ),
        None,
    )  # fmt: skip
    if target is None:
        raise ActError(f"no ReplicaSet with {HASH_LABEL}={to_hash} owned by the Deployment")
    template = _without_hash(target["spec"]["template"])
    current = deployment["metadata"].get("annotations") or {}
    if _without_hash(deployment["spec"]["template"]) == template:
        if not paused:
            return None
        kept = {k: v for k, v in current.items() if k != keys.PAUSED_BY_GUARD}
        return [  # rolled back before a crash, not resumed yet
            calls.resource_version_test(deployment),
            {"op": "replace", "path": "/spec/paused", "value": False},
            {"op": "replace", "path": "/metadata/annotations", "value": kept},
        ]
    annotations = {k: v for k, v in current.items() if k in ANNOTATIONS_TO_SKIP}
    annotations.update(
        {k: v for k, v in (target["metadata"].get("annotations") or {}).items()
         if k not in ANNOTATIONS_TO_SKIP}
    )  # fmt: skip
    annotations[keys.CHANGE_CAUSE] = cause
    annotations[keys.REMEDIATION_ID] = rid
    annotations[keys.ROLLED_BACK_TO] = to_hash
    annotations.pop(keys.PAUSED_BY_GUARD, None)
    ops = [
        calls.resource_version_test(deployment),
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    if paused:
        ops.append({"op": "replace", "path": "/spec/paused", "value": False})
    return ops


async def roll_back(
    api: calls.Api,
    namespace: str,
    name: str,
    to_hash: str,
    cause: str,
    rid: str,
    resume: bool = False,
) -> ActResult:
    """Roll `name` back to the ReplicaSet whose pod-template-hash is `to_hash`."""

    async def attempt() -> ActResult:
        deployment = await calls.get_deployment(api, namespace, name)
        replicasets = await calls.list_replicasets(api, namespace)
        patch = plan(deployment, replicasets, to_hash, cause, rid, resume)
        if patch is None:
            return ActResult(False, f"already at pod template {to_hash}")
        await calls.patch_deployment(api, namespace, name, patch)
        return ActResult(True, f"rolled back to pod template {to_hash}")

    return await retry_conflicts(attempt)
