"""Pause a rollout (`kubectl rollout pause`), marked as the rollout guard's, guarded by
resourceVersion: no more pods are replaced while the rollback is prepared."""

from __future__ import annotations

from typing import Any

from venue_operator.act import ActResult
from venue_operator.act.retry import retry_conflicts
from venue_operator.kube import calls
from venue_operator.model import keys


def plan(deployment: dict[str, Any], rid: str) -> list[dict[str, Any]] | None:
    """The JSON patch that pauses it, or None when it is paused already (idempotent)."""
    if deployment["spec"].get("paused"):
        return None
    annotations = dict(deployment["metadata"].get("annotations") or {})
    annotations[keys.PAUSED_BY_GUARD] = rid
    return [
        calls.resource_version_test(deployment),
        {"op": "add", "path": "/spec/paused", "value": True},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]


async def pause_rollout(api: calls.Api, namespace: str, name: str, rid: str) -> ActResult:
    async def attempt() -> ActResult:
        patch = plan(await calls.get_deployment(api, namespace, name), rid)
        if patch is None:
            return ActResult(False, "already paused")
        await calls.patch_deployment(api, namespace, name, patch)
        return ActResult(True, "paused")

    return await retry_conflicts(attempt)
