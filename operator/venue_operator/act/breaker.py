"""The circuit breaker: one key in a ConfigMap the service reads, with who/when/why."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes.aio import client

from venue_operator import keys
from venue_operator.act import ActResult


async def set_circuit(
    api: client.ApiClient, namespace: str, config_map: str, key: str, open_: bool, who: str,
    reason: str,
) -> ActResult:  # fmt: skip
    """Set `key` to "true"/"false"; creates the ConfigMap if missing. Idempotent."""
    core = client.CoreV1Api(api)
    value = "true" if open_ else "false"
    annotations = {
        keys.CIRCUIT_SET_BY: who,
        keys.CIRCUIT_SET_AT: datetime.now(UTC).isoformat(),
        keys.CIRCUIT_REASON: reason[:500],
    }
    try:
        current = await core.read_namespaced_config_map(config_map, namespace)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map, "annotations": annotations}, "data": {key: value},
        }  # fmt: skip
        try:
            config = client.V1ConfigMap.from_dict(body)
            assert config is not None
            await core.create_namespaced_config_map(namespace, config)
            return ActResult(True, f"created {config_map} with {key}={value}")
        except client.ApiException as again:
            if again.status != 409:
                raise
            current = await core.read_namespaced_config_map(config_map, namespace)
    if (current.data or {}).get(key) == value:
        return ActResult(False, f"{config_map} already has {key}={value}")
    patch = {"metadata": {"annotations": annotations}, "data": {key: value}}
    await core.patch_namespaced_config_map(
        config_map, namespace, patch, _content_type="application/merge-patch+json"
    )
    return ActResult(True, f"set {config_map} {key}={value}")
