"""The operator's own Kubernetes API calls (kubernetes.aio); Kopf does the watching."""

from __future__ import annotations

from typing import Any, cast

from kubernetes.aio import client, config
from kubernetes.aio.config.config_exception import ConfigException

from venue_operator.model import GROUP, PLURAL, VERSION

JSON_PATCH = "application/json-patch+json"


async def connect(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except ConfigException:
            pass
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


async def replace_status(
    api: client.ApiClient, namespace: str, name: str, status: dict[str, Any]
) -> None:
    """Replace a VenueService's whole status (JSON patch `add /status`; unlike a merge
    patch, a field missing from `status` is removed)."""
    ops = [{"op": "add", "path": "/status", "value": status}]
    await client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, ops, _content_type=JSON_PATCH
    )


async def get_venueservice(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    result = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return cast(dict[str, Any], result)


CONFLICT_STATUSES = {409, 422}  # 422: a JSON-patch "test" op failed (resourceVersion moved)


def as_dict(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A client model as the plain camelCase dict the API speaks."""
    return cast(dict[str, Any], api.sanitize_for_serialization(obj))


async def get_deployment(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return as_dict(api, await client.AppsV1Api(api).read_namespaced_deployment(name, namespace))


async def patch_deployment(
    api: client.ApiClient, namespace: str, name: str, ops: list[dict[str, Any]]
) -> dict[str, Any]:
    """JSON patch; callers start `ops` with a resourceVersion test for optimistic concurrency."""
    result = await client.AppsV1Api(api).patch_namespaced_deployment(
        name, namespace, ops, _content_type=JSON_PATCH
    )
    return as_dict(api, result)


async def list_replicasets(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    result = await client.AppsV1Api(api).list_namespaced_replica_set(namespace)
    return cast(list[dict[str, Any]], as_dict(api, result)["items"])


KEDA = ("keda.sh", "v1alpha1", "scaledobjects")  # group, version, plural


async def get_hpa(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    hpa = await client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        name, namespace
    )
    return as_dict(api, hpa)


async def patch_hpa(
    api: client.ApiClient, namespace: str, name: str, ops: list[dict[str, Any]]
) -> None:
    await client.AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(
        name, namespace, ops, _content_type=JSON_PATCH
    )


async def get_scaled_object(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    group, version, plural = KEDA
    found = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        group, version, namespace, plural, name
    )
    return cast(dict[str, Any], found)


async def patch_scaled_object(
    api: client.ApiClient, namespace: str, name: str, ops: list[dict[str, Any]]
) -> None:
    group, version, plural = KEDA
    await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        group, version, namespace, plural, name, ops, _content_type=JSON_PATCH
    )


def resource_version_test(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": obj["metadata"]["resourceVersion"],
    }
