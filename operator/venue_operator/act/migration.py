"""The migration Job, exactly like `kubectl create job NAME --from=cronjob/venue-migrate`.

The name is derived from the action's correlation id, so a rerun after a crash finds
the Job it created instead of creating a second one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubernetes.aio import client

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


async def run_migration(
    api: client.ApiClient, namespace: str, cronjob_name: str, rid: str
) -> ActResult:
    batch = client.BatchV1Api(api)
    name = job_name(cronjob_name, rid)
    try:
        cronjob = calls.as_dict(api, await batch.read_namespaced_cron_job(cronjob_name, namespace))
    except client.ApiException as exc:
        if exc.status == 404:
            raise ActError(f"CronJob {cronjob_name} not found in {namespace}") from None
        raise
    try:
        job = client.V1Job.from_dict(job_from_cronjob(cronjob, name, rid))
        assert job is not None
        await batch.create_namespaced_job(namespace, job)
    except client.ApiException as exc:
        if exc.status == 409:
            return ActResult(False, f"Job {name} already exists")
        raise
    return ActResult(True, f"created Job {name} from cronjob/{cronjob_name}")


async def job_outcome(api: client.ApiClient, namespace: str, name: str) -> str | None:
    """'Succeeded', 'Failed', or None while it runs (or when it is gone)."""
    try:
        job = calls.as_dict(api, await client.BatchV1Api(api).read_namespaced_job(name, namespace))
    except client.ApiException as exc:
        if exc.status == 404:
            return "Failed"
        raise
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "Succeeded" if condition["type"] == "Complete" else "Failed"
    return None
