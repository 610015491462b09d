"""The circuit breaker: one key in a ConfigMap the service reads, with who/when/why."""

from __future__ import annotations

from datetime import UTC, datetime

from venue_operator.act import ActResult
from venue_operator.act.retry import retry_conflicts
from venue_operator.kube import calls
from venue_operator.model import keys


async def set_circuit(
    api: calls.Api, namespace: str, config_map: str, key: str, open_: bool, who: str,
    reason: str,
) -> ActResult:  # fmt: skip
    """Set `key` to "true"/"false"; creates the ConfigMap if missing. Idempotent; guarded by
    resourceVersion like every act (a human's write in between is re-read, not overwritten)."""
    value = "true" if open_ else "false"
    annotations = {
        keys.CIRCUIT_SET_BY: who,
        keys.CIRCUIT_SET_AT: datetime.now(UTC).isoformat(),
        keys.CIRCUIT_REASON: reason[:500],
    }

    async def attempt() -> ActResult:
        try:
            current = await calls.get_config_map(api, namespace, config_map)
        except calls.ApiError as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": config_map, "annotations": annotations},
                "data": {key: value},
            }  # fmt: skip
            await calls.create_config_map(api, namespace, body)  # 409: someone was first
            return ActResult(True, f"created {config_map} with {key}={value}")
        if (current.get("data") or {}).get(key) == value:
            return ActResult(False, f"{config_map} already has {key}={value}")
        # the resourceVersion makes the merge patch a 409 if anyone wrote since our read
        version = (current.get("metadata") or {}).get("resourceVersion")
        meta = {"annotations": annotations, "resourceVersion": version}
        await calls.merge_patch_config_map(
            api, namespace, config_map, {"metadata": meta, "data": {key: value}}
        )
        return ActResult(True, f"set {config_map} {key}={value}")

    return await retry_conflicts(attempt, f"setting {config_map} {key}")
