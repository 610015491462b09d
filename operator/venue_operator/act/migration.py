"""The migration Job, exactly like `kubectl create job NAME --from=cronjob/venue-migrate`.

The name is derived from the action's correlation id, so a rerun after a crash finds
the Job it created instead of creating a second one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from venue_operator.act import ActError, ActResult
from venue_operator.kube import calls
from venue_operator.model import keys


def job_name(cronjob: str, rid: str) -> str:
    """Deterministic (from the correlation id), DNS-safe, at most 63 characters."""
    digest = hashlib.sha256(rid.encode()).hexdigest()[:8]
    return f"{cronjob[:46]}-venue-{digest}"


def job_from_cronjob(cronjob: dict[str, Any], name: str, rid: str) -> dict[str, Any]:
    template = cronjob["spec"]["jobTemplate"]
    meta = template.get("metadata") or {}
    annotations = {
        **(meta.get("annotations") or {}),
        keys.CRONJOB_INSTANTIATE: "manual",
        keys.REMEDIATION_ID: rid,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cronjob["metadata"]["namespace"],
            "annotations": annotations,
            "labels": meta.get("labels") or {},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }


async def run_migration(api: calls.Api, namespace: str, cronjob_name: str, rid: str) -> ActResult:
    """Create the Job for `rid` from the CronJob (found created on a rerun); `job` names it."""
    name = job_name(cronjob_name, rid)
    try:
        cronjob = await calls.get_cronjob(api, namespace, cronjob_name)
    except calls.ApiError as exc:
        if exc.status == 404:
            raise ActError(f"CronJob {cronjob_name} not found in {namespace}") from None
        raise
    try:
        await calls.create_job(api, namespace, job_from_cronjob(cronjob, name, rid))
    except calls.ApiError as exc:
        if exc.status == 409:
            return ActResult(False, f"Job {name} already exists", job=name)
        raise
    return ActResult(True, f"created Job {name} from cronjob/{cronjob_name}", job=name)


async def job_outcome(api: calls.Api, namespace: str, name: str) -> str | None:
    """'Succeeded', 'Failed', or None while it runs (or when it is gone)."""
    try:
        job = await calls.get_job(api, namespace, name)
    except calls.ApiError as exc:
        if exc.status == 404:
            return "Failed"
        raise
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "Succeeded" if condition["type"] == "Complete" else "Failed"
    return None
