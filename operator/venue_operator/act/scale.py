"""Scale a Deployment up, guarded by resourceVersion; never down (no fight with humans)."""

from __future__ import annotations

from kubernetes.aio import client

from venue_operator import kube
from venue_operator.act import ActError, ActResult

MAX_ATTEMPTS = 5


async def scale_up(api: client.ApiClient, namespace: str, name: str, replicas: int) -> ActResult:
    for _ in range(MAX_ATTEMPTS):
        deployment = await kube.get_deployment(api, namespace, name)
        current = int(deployment["spec"].get("replicas", 1))
        if current >= replicas:
            return ActResult(False, f"already at {current} replicas (wanted {replicas})")
        ops = [
            kube.resource_version_test(deployment),
            {"op": "replace", "path": "/spec/replicas", "value": replicas},
        ]
        try:
            await kube.patch_deployment(api, namespace, name, ops)
        except client.ApiException as exc:
            if exc.status in kube.CONFLICT_STATUSES:
                continue
            raise
        return ActResult(True, f"scaled {current} -> {replicas}")
    raise ActError(f"gave up after {MAX_ATTEMPTS} conflicting writes")
