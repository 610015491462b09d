"""The shard members' Leases (coordination.k8s.io/v1), one per replica, in the operator's
namespace, labelled so that the replicas list each other's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from kubernetes.aio import client

from venue_operator.kube.calls import MERGE_PATCH, Api, ApiError, as_dict

SHARD_LABEL = "ops.tickettoken.io/venue-operator-shard"


def _micro(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def renew(api: Api, namespace: str, holder: str, duration: timedelta) -> None:
    """Create or renew `holder`'s own Lease (named after it): renewTime now."""
    leases = client.CoordinationV1Api(api)
    spec = {"holderIdentity": holder, "leaseDurationSeconds": int(duration.total_seconds()),
            "renewTime": _micro(datetime.now(UTC))}  # fmt: skip
    try:
        await leases.patch_namespaced_lease(
            holder, namespace, {"spec": spec}, _content_type=MERGE_PATCH
        )
    except ApiError as exc:
        if exc.status != 404:
            raise
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": holder, "labels": {SHARD_LABEL: "member"}},
                "spec": {**spec, "acquireTime": spec["renewTime"]}}  # fmt: skip
        await leases.create_namespaced_lease(namespace, cast(Any, body))  # a dict is sent as is


async def members(api: Api, namespace: str) -> list[tuple[str, datetime, timedelta]]:
    """Every shard member's Lease, live or not: (holder, renewed at, for how long)."""
    found = await client.CoordinationV1Api(api).list_namespaced_lease(
        namespace, label_selector=f"{SHARD_LABEL}=member"
    )
    out = []
    for item in as_dict(api, found).get("items", []):
        spec: dict[str, Any] = item.get("spec") or {}
        renewed, seconds = spec.get("renewTime"), spec.get("leaseDurationSeconds")
        if spec.get("holderIdentity") and renewed and seconds:
            at = datetime.fromisoformat(str(renewed))  # 3.11 reads the "Z"
            out.append((str(spec["holderIdentity"]), at, timedelta(seconds=int(seconds))))
    return out


async def release(api: Api, namespace: str, holder: str) -> None:
    """On the way out: the Lease is deleted, so the others take its services at once."""
    try:
        await client.CoordinationV1Api(api).delete_namespaced_lease(holder, namespace)
    except ApiError as exc:
        if exc.status != 404:
            raise
