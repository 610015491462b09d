"""Who owns a Deployment's replica count: the HorizontalPodAutoscaler (autoscaling/v2) whose
scaleTargetRef names it, from a watch-fed index, and the KEDA ScaledObject owning that HPA,
read (GET) only when a decision may need it (KEDA's CRD may not be installed: no watch)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from venue_operator.decide.rules import CAPACITY_CHECKS, POOL_CHECKS
from venue_operator.kube import calls
from venue_operator.model.observations import Scaler, WorkloadState
from venue_operator.model.status import Level, ScaledKind, VenueServiceStatus

log = structlog.get_logger(__name__)


def hpa_summary(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the index keeps of an HPA that scales a Deployment (None: it scales something else)."""
    spec = body.get("spec") or {}
    target = spec.get("scaleTargetRef") or {}
    if target.get("kind") != "Deployment" or not target.get("name"):
        return None
    meta = body.get("metadata") or {}
    owner = next(
        (ref.get("name") for ref in meta.get("ownerReferences") or []
         if ref.get("kind") == "ScaledObject" and str(ref.get("apiVersion", "")).startswith(
             f"{calls.KEDA[0]}/")),
        None,
    )  # fmt: skip
    return {
        "name": meta.get("name"),
        "deployment": target["name"],
        "min": int(spec.get("minReplicas", 1)),
        "max": int(spec.get("maxReplicas", 1)),
        "scaled_object": owner,
    }


def scaler_of(hpas: Iterable[Mapping[str, Any]]) -> Scaler | None:
    """The HPA scaling a Deployment (the first by name if several: the HPA controller itself
    refuses to act on an ambiguous target)."""
    found = sorted(hpas, key=lambda h: str(h["name"]))
    if not found:
        return None
    h = found[0]
    return Scaler(hpa=h["name"], min_replicas=h["min"], max_replicas=h["max"],
                  scaled_object=h["scaled_object"])  # fmt: skip


def scaled_object_needed(workload: WorkloadState, status: VenueServiceStatus) -> bool:
    """Read the ScaledObject only when decide may use its counts: a capacity check is
    critical (a scale-up may follow) or the ScaledObject holds a loan (a restore may); not
    every cycle of every KEDA service, nor in a database outage (no scale-up follows)."""
    scaler = workload.scaler
    if scaler is None or scaler.scaled_object is None:
        return False
    loan = status.capacity
    if loan is not None and loan.kind is ScaledKind.SCALED_OBJECT:
        return True
    return any(
        c.level is Level.CRITICAL and c.name in CAPACITY_CHECKS + POOL_CHECKS for c in status.checks
    )


async def with_scaled_object(
    api: calls.Api, namespace: str, workload: WorkloadState
) -> WorkloadState:
    """Fill in the ScaledObject's counts when one owns the HPA; unreadable -> said so."""
    scaler = workload.scaler
    if scaler is None or scaler.scaled_object is None:
        return workload
    try:
        obj = await calls.get_scaled_object(api, namespace, scaler.scaled_object)
    except calls.ApiError as exc:
        why = f"ScaledObject {scaler.scaled_object} cannot be read (API {exc.status} {exc.reason})"
        log.warning("scaler.unreadable", namespace=namespace, scaled_object=scaler.scaled_object,
                    status=exc.status)  # fmt: skip
        return dataclasses.replace(workload, scaler_unreadable=why)
    spec = obj.get("spec") or {}
    read = dataclasses.replace(
        scaler,
        scaled_object_min=int(spec.get("minReplicaCount", 0)),  # KEDA's default
        scaled_object_max=int(spec.get("maxReplicaCount", 100)),  # KEDA's default
    )
    return dataclasses.replace(workload, scaler=read)
