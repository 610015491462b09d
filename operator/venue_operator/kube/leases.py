"""The shard members' Leases (coordination.k8s.io/v1), one per replica, in the operator's
namespace, labelled so that the replicas list each other's. A Lease's annotations carry what
its replica publishes for the others (fleet/exchange.py), in the same renewal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from venue_operator.kube.calls import MERGE_PATCH, Api, ApiError, request

SHARD_LABEL = "ops.tickettoken.io/venue-operator-shard"
Listed = tuple[str, datetime, timedelta, dict[str, str]]  # holder, renewed, term, annotations


def _micro(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


async def renew(
    api: Api, namespace: str, holder: str, duration: timedelta,
    annotations: Mapping[str, str] | None = None,
) -> None:  # fmt: skip
    """Create or renew `holder`'s own Lease (named after it): renewTime now, and
    `annotations` replaced (a merge patch: other annotations are left as they are)."""
    spec = {"holderIdentity": holder, "leaseDurationSeconds": int(duration.total_seconds()),
            "renewTime": _micro(datetime.now(UTC))}  # fmt: skip
    patch: dict[str, Any] = {"spec": spec}
    if annotations:
        patch["metadata"] = {"annotations": dict(annotations)}
    try:
        await request(api, "PATCH", _path(namespace, holder), body=patch,
                      content_type=MERGE_PATCH)  # fmt: skip
    except ApiError as exc:
        if exc.status != 404:
            raise
        metadata = {"name": holder, "labels": {SHARD_LABEL: "member"},
                    "annotations": dict(annotations or {})}  # fmt: skip
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {**spec, "acquireTime": spec["renewTime"]}}  # fmt: skip
        await request(api, "POST", _path(namespace), body=body)


async def members(api: Api, namespace: str) -> list[Listed]:
    """Every shard member's Lease, live or not: (holder, renewed at, for how long, its
    annotations)."""
    found = await request(api, "GET", _path(namespace),
                          query={"labelSelector": f"{SHARD_LABEL}=member"})  # fmt: skip
    out = []
    for item in found.get("items", []):
        spec: dict[str, Any] = item.get("spec") or {}
        renewed, seconds = spec.get("renewTime"), spec.get("leaseDurationSeconds")
        if spec.get("holderIdentity") and renewed and seconds:
            at = datetime.fromisoformat(str(renewed))  # 3.11 reads the "Z"
            annotations = (item.get("metadata") or {}).get("annotations") or {}
            out.append((str(spec["holderIdentity"]), at, timedelta(seconds=int(seconds)),
                        {str(k): str(v) for k, v in annotations.items()}))  # fmt: skip
    return out


async def release(api: Api, namespace: str, holder: str) -> None:
    """On the way out: the Lease is deleted, so the others take its services at once."""
    try:
        await request(api, "DELETE", _path(namespace, holder))
    except ApiError as exc:
        if exc.status != 404:
            raise
