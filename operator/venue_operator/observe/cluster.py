"""Cluster state from the watch-fed indexes: summaries of Deployments, ReplicaSets, Pods and
Jobs, and the WorkloadState of one Deployment built from them. No API calls here: the
indexes (registered in cli/handlers.py) are fed by Kopf's watches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from venue_operator.decide import gitops
from venue_operator.model import keys
from venue_operator.model.observations import Revision, WorkloadState
from venue_operator.model.status import IMAGE_CHARS


def _owner(body: Mapping[str, Any], kind: str) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("name"))
    return None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def deployment_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    spec, status = body.get("spec", {}), body.get("status", {}) or {}
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "replicas": spec.get("replicas", 1),
        "paused": bool(spec.get("paused")),
        "ready": status.get("readyReplicas", 0) or 0,
        "revision": int(annotations.get(keys.REVISION, 0) or 0),
        "rolled_back_to": annotations.get(keys.ROLLED_BACK_TO),
        "revision_history_limit": spec.get("revisionHistoryLimit"),
        "gitops": gitops.owner(meta.get("labels"), annotations),
        "template_writer": template_writer(meta.get("managedFields") or []),
        "paused_by_guard": keys.PAUSED_BY_GUARD in annotations,
        "progress_deadline_exceeded": any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in status.get("conditions") or []
        ),
        "complete": _complete(spec, status, meta),
    }


def template_writer(managed: Iterable[Mapping[str, Any]]) -> str | None:
    """The field manager that last wrote the pod template (`managedFields`: the newest entry
    on the main resource whose fields include spec.template), or None."""
    writes = [m for m in managed if not m.get("subresource")
              and "f:template" in ((m.get("fieldsV1") or {}).get("f:spec") or {})]  # fmt: skip
    if not writes:
        return None
    newest = max(writes, key=lambda m: str(m.get("time") or ""))
    return str(newest.get("manager") or "") or None


def _complete(spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """`kubectl rollout status` done: every replica updated and available, nothing left over."""
    replicas = spec.get("replicas", 1)
    return (
        (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0)
        and (status.get("updatedReplicas") or 0) >= replicas
        and (status.get("replicas") or 0) <= (status.get("updatedReplicas") or 0)
        and (status.get("availableReplicas") or 0) >= replicas
    )


def replicaset_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata", {})
    template_meta = (body.get("spec", {}).get("template") or {}).get("metadata") or {}
    template_annotations = template_meta.get("annotations") or {}
    return {
        "name": meta.get("name"),
        "deployment": _owner(body, "Deployment"),
        "revision": int((meta.get("annotations") or {}).get(keys.REVISION, 0) or 0),
        "hash": (meta.get("labels") or {}).get(keys.HASH_LABEL),
        "created": meta.get("creationTimestamp"),
        "migration": template_annotations.get(keys.MIGRATION),
        "backward_compatible": template_annotations.get(keys.BACKWARD_COMPATIBLE) == "true",
        "image": _images(body.get("spec", {}).get("template") or {}),
    }


def _images(template: Mapping[str, Any]) -> str | None:
    """The pod template's containers' images, comma-separated (sidecars too: which one is
    the service's is the spec's to say, not the ReplicaSet's)."""
    containers = (template.get("spec") or {}).get("containers") or []
    images = [str(c["image"]) for c in containers if c.get("image")]
    return ", ".join(images)[:IMAGE_CHARS] or None


def pod_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status", {}) or {}
    statuses = status.get("containerStatuses", []) or []
    waiting = [((s.get("state") or {}).get("waiting") or {}).get("reason") for s in statuses]
    meta = body.get("metadata", {})
    conditions = status.get("conditions") or []
    return {
        "name": meta.get("name"),
        "replicaset": _owner(body, "ReplicaSet"),
        "crash_looping": "CrashLoopBackOff" in waiting,
        # for the rollout guard (guard/pod_metrics.py): where to read it, which version it runs
        "ip": status.get("podIP"),
        "host_network": bool((body.get("spec") or {}).get("hostNetwork")),
        "hash": (meta.get("labels") or {}).get(keys.HASH_LABEL),
        "created": meta.get("creationTimestamp"),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        "restarts": sum(int(s.get("restartCount") or 0) for s in statuses),
        "deleting": bool(meta.get("deletionTimestamp")),
        "containers": _containers(body.get("spec") or {}, statuses),
    }


def _containers(
    spec: Mapping[str, Any], statuses: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each container's own restarts, crash loop, readiness and ports: a sidecar's are not the
    service's (`own_view`)."""
    ports = {c.get("name"): [int(p.get("containerPort") or 0) for p in c.get("ports") or []]
             for c in spec.get("containers") or []}  # fmt: skip
    return [
        {
            "name": s.get("name"),
            "restarts": int(s.get("restartCount") or 0),
            "crash_looping": ((s.get("state") or {}).get("waiting") or {}).get("reason")
            == "CrashLoopBackOff",
            "ready": bool(s.get("ready")),
            "ports": ports.get(s.get("name"), []),
        }
        for s in statuses
    ]


def own_view(summary: Mapping[str, Any], container: str | None, port: int | None) -> dict[str, Any]:
    """The pod as the service's own container has it: that container's restarts, crash loop
    and readiness, so that a sidecar's never count against a version. The container is the
    one named (spec.deployment.container), else the one exposing the service's port; when
    neither is found, the whole pod as before."""
    containers = summary.get("containers") or []
    own = next((c for c in containers if container and c.get("name") == container), None)
    if own is None and container is None and port:
        own = next((c for c in containers if port in c.get("ports", [])), None)
    if own is None:
        return dict(summary)
    return {**summary, "restarts": own["restarts"], "crash_looping": own["crash_looping"],
            "ready": own["ready"]}  # fmt: skip


def job_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status", {}) or {}
    return {
        "name": body.get("metadata", {}).get("name"),
        "cronjob": _owner(body, "CronJob"),
        "active": int(status.get("active", 0) or 0),
        "succeeded": int(status.get("succeeded", 0) or 0),
        "failed": int(status.get("failed", 0) or 0),
    }


def workload_state(
    deployment: Mapping[str, Any] | None,
    replicasets: Iterable[Mapping[str, Any]],
    pods_by_replicaset: Mapping[str, Iterable[Mapping[str, Any]]],
    migration_jobs: Iterable[Mapping[str, Any]],
) -> WorkloadState:
    """What assess needs to know about one Deployment, from index summaries."""
    if deployment is None:
        return WorkloadState(found=False)
    current = [rs for rs in replicasets if rs["revision"] == deployment["revision"]]
    started = _time(current[0]["created"]) if current else None
    pods = [p for rs in replicasets for p in pods_by_replicaset.get(rs["name"], ())]
    revisions = tuple(
        Revision(
            rs["revision"], rs["hash"], rs["migration"], rs["backward_compatible"], rs.get("image")
        )
        for rs in replicasets
        if rs["hash"] and rs["revision"]
    )
    return WorkloadState(
        found=True,
        name=deployment.get("name") or "",
        desired=deployment["replicas"],
        ready=deployment["ready"],
        revision=deployment["revision"] or None,
        template_hash=current[0]["hash"] if current else None,
        revisions=revisions,
        paused=deployment["paused"],
        rollout_started_at=started,
        crash_looping=sum(1 for p in pods if p["crash_looping"]),
        migration_running=any(j["active"] > 0 for j in migration_jobs),
        rolled_back_to=deployment.get("rolled_back_to"),
        revision_history_limit=deployment.get("revision_history_limit"),
        gitops=deployment.get("gitops"),
        template_writer=deployment.get("template_writer"),
    )
