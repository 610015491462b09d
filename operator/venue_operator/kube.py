"""The operator's own Kubernetes API calls (kubernetes.aio); Kopf does the watching."""

from __future__ import annotations

from typing import Any, cast

from kubernetes.aio import client, config
from kubernetes.aio.config.config_exception import ConfigException

from venue_operator.model import GROUP, PLURAL, VERSION

MERGE_PATCH = "application/merge-patch+json"


async def connect() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()
    except ConfigException:
        await config.load_kube_config()
    return client.ApiClient()


async def patch_status(
    api: client.ApiClient, namespace: str, name: str, body: dict[str, Any]
) -> None:
    await client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, body, _content_type=MERGE_PATCH
    )


async def get_venueservice(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    result = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return cast(dict[str, Any], result)
