"""What the watch caches say about a VenueService's Deployment: its state (revisions, pods,
the migration Job, the HPA), and whether another VenueService claimed it first."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from venue_operator.loop.workload_watch import WorkloadWatch
from venue_operator.model.observations import WorkloadState
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.observe import cluster, scalers

WORKLOAD_INDEXES = ("deployments", "replicasets", "pods", "jobs")
HPA_INDEX = "horizontalpodautoscalers"
# a fill is one list per kind of the namespace, at most every FILL_GAP_S; more is a slow
# API server (the cycle then says the workload is not read yet, and asks again next time)
KEPT_WAIT_S = 8.0
NOT_KEPT_YET = ("the operator's watch has not listed this Deployment's ReplicaSets, Pods "
                "and Jobs yet")  # fmt: skip


async def want_workload(
    kept: WorkloadWatch | None, loop: str, namespace: str, spec: VenueServiceSpec
) -> str | None:
    """Ask the workload watch for what this service names; why it cannot be read yet, if so."""
    if kept is None:
        return None
    ask_workload(kept, loop, namespace, spec)
    if kept.ready(loop):
        return None  # the steady case: no timer to arm and cancel
    try:
        async with asyncio.timeout(KEPT_WAIT_S):
            await kept.until_ready(loop)
    except TimeoutError:
        return NOT_KEPT_YET
    return None


def ask_workload(
    kept: WorkloadWatch | None, loop: str, namespace: str, spec: VenueServiceSpec
) -> None:
    """Say what this loop reads from now on: its Deployment's objects, its CronJob's Jobs.
    Asked as a loop starts, before its first cycle's wait: a takeover's (or a start's) loops
    all ask within one fill's batch, and the namespace is listed for them once, rather than
    every FILL_GAP_S as their first cycles come."""
    if kept is not None:
        kept.want(loop, namespace, spec.deployment.name, spec.remediation.migration.cron_job_name)


def workload_from_indexes(
    namespace: str, spec: VenueServiceSpec, indexes: Mapping[str, Any]
) -> tuple[WorkloadState, dict[str, Any] | None]:
    """The Deployment's state, and a reference to it for Events, from the watch caches."""
    name = spec.deployment.name
    found = list(indexes["deployments"].get((namespace, name), []))
    rs = list(indexes["replicasets"].get((namespace, name), []))
    own = functools.partial(cluster.own_view, container=spec.deployment.container,
                            port=spec.service.port)  # fmt: skip
    pods_by_rs = {r["name"]: [own(p) for p in indexes["pods"].get((namespace, r["name"]), [])]
                  for r in rs}  # fmt: skip
    migration: Any = indexes["jobs"].get((namespace, spec.remediation.migration.cron_job_name), [])
    deployment = found[0] if found else None
    hpas = indexes.get(HPA_INDEX)
    scaler = scalers.scaler_of(hpas.get((namespace, name), [])) if hpas is not None else None
    ref = None
    if deployment is not None:
        meta = {"name": name, "namespace": namespace, "uid": deployment["uid"]}
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    state = cluster.workload_state(deployment, rs, pods_by_rs, list(migration))
    return dataclasses.replace(state, scaler=scaler) if state.found else state, ref


def guard_marker(
    namespace: str, spec: VenueServiceSpec, indexes: Mapping[str, Any],
    kept: WorkloadWatch | None, generation: int | None,
) -> tuple[Any, ...] | None:  # fmt: skip
    """What a tick of a rollout watch between rollouts depends on (guard/watch.py `_follow`:
    the template and whether the operator rolled back to it): the spec's generation, the
    Deployment's revision and rollback mark, its ReplicaSets as kept. While it stands still
    the tick is skipped (1,250 services a replica, a tick every 2 s each). None: unknown
    (no workload watch, or no Deployments index: the RBAC does not allow it)."""
    if kept is None or generation is None or "deployments" not in indexes:
        return None
    name = spec.deployment.name
    found = list(indexes["deployments"].get((namespace, name), []))
    deployment = found[0] if found else {}
    return (generation, deployment.get("revision"), deployment.get("rolled_back_to"),
            kept.version("replicasets", (namespace, name)))  # fmt: skip


def read_workload(
    namespace: str, spec: VenueServiceSpec, indexes: Mapping[str, Any],
    missing_permissions: Mapping[str, str],
) -> tuple[WorkloadState, dict[str, Any] | None]:  # fmt: skip
    """`workload_from_indexes`, or why it cannot be read (an index the RBAC does not allow)."""
    missing = [missing_permissions[k] for k in WORKLOAD_INDEXES
               if k not in indexes and k in missing_permissions]  # fmt: skip
    if missing:
        return WorkloadState(found=False, unreadable="; ".join(missing)), None
    workload, ref = workload_from_indexes(namespace, spec, indexes)
    if HPA_INDEX not in indexes and HPA_INDEX in missing_permissions:
        why = missing_permissions[HPA_INDEX]
        return dataclasses.replace(workload, scaler_unreadable=f"whether an HPA scales it is "
                                   f"unknown: {why}"), ref  # fmt: skip
    return workload, ref


def claimed_by(
    namespace: str, name: str, spec: VenueServiceSpec, indexes: Mapping[str, Any]
) -> str | None:
    """The VenueService that watches this Deployment first, when that is not `name`."""
    index = indexes.get("venueservices")
    claims = list(index.get((namespace, spec.deployment.name), [])) if index else []
    if not claims:
        return None
    first = min(claims, key=lambda c: (c.get("created") or "", c["name"]))
    return None if first["name"] == name else str(first["name"])
