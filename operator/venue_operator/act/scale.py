"""Scale a Deployment up, guarded by resourceVersion; never down (no fight with humans).

One writer for every replica count: this is act/capacity.set_count for the Deployment's
`spec.replicas`, with no annotation (the loan is kept in status only)."""

from __future__ import annotations

from kubernetes.aio import client

from venue_operator.act import ActResult, capacity
from venue_operator.model import ScaledKind


async def scale_up(api: client.ApiClient, namespace: str, name: str, replicas: int) -> ActResult:
    return await capacity.set_count(api, namespace, ScaledKind.DEPLOYMENT, name, replicas, None)
