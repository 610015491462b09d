"""The operator's own Kubernetes API calls (kubernetes.aio); Kopf does the watching.

Every call takes the opaque `Api` handle and answers plain camelCase dicts (the API's own
shape), never the client's models; a refusal is an `ApiError`. So the rest of the operator
never imports the client, and a test's fake answers what the API server would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, cast

from kubernetes.aio import client, config
from kubernetes.aio.config.config_exception import ConfigException

from venue_operator.kube.errors import ApiError as ApiError
from venue_operator.kube.errors import is_conflict as is_conflict
from venue_operator.kube.errors import refusal as refusal
from venue_operator.model.spec import GROUP, PLURAL, VERSION, SecretKeyRef

Api = client.ApiClient  # the connection every call takes (`connect`)
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
Resource = tuple[str, str, str]  # a custom resource's group, version, plural
VENUESERVICES: Resource = (GROUP, VERSION, PLURAL)
KEDA: Resource = ("keda.sh", "v1alpha1", "scaledobjects")
# Every API class the operator calls. The client imports one's module (and its models) on
# first use, on the event loop: CoreV1Api's took 0.41 s (25 MB) in the cycle that posted the
# operator's first Event, and every VenueService's next cycle waited that long (a 1 s fleet
# beside the first P1 lost up to one evaluation each; more on a CPU-starved node).
API_CLASSES = ("CoreV1Api", "AppsV1Api", "BatchV1Api", "AutoscalingV2Api", "CustomObjectsApi",
               "AuthorizationV1Api", "DiscoveryV1Api", "CoordinationV1Api")  # fmt: skip


def import_api_classes() -> None:
    """Import every class of `API_CLASSES` now, before any loop runs (see there)."""
    for name in API_CLASSES:
        getattr(client, name)


async def request(
    api: Api, method: str, path: str, *, query: Mapping[str, str] | None = None,
    body: Any = None, content_type: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One call to the API server, answered as the JSON it sent: no API class or model of the
    client is loaded (they are most of its memory). A refusal is an `ApiError`, as from them."""
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    serialized = await api.param_serialize(
        method, path, query_params=list((query or {}).items()), header_params=headers,
        body=body, auth_settings=["BearerToken"],
    )  # fmt: skip
    response = await api.call_api(*serialized)
    data = await response.read()
    if not 200 <= response.status <= 299:
        raise ApiError.from_response(http_resp=response, body=data.decode(errors="replace"),
                                     data=None)  # fmt: skip
    return cast(dict[str, Any], json.loads(data)) if data else {}


def custom_path(resource: Resource, namespace: str | None, name: str = "") -> str:
    """The path of a custom resource's collection, or of one object with `name`."""
    group, version, plural = resource
    scope = f"/namespaces/{namespace}" if namespace is not None else ""
    return f"/apis/{group}/{version}{scope}/{plural}" + (f"/{name}" if name else "")


async def connect(kubeconfig: str | None = None) -> Api:
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


def api_server_url(api: Api) -> str:
    """The API server's URL as this connection reaches it (in-cluster: the Service's IP)."""
    return cast(str, api.configuration.host)


async def get_service(api: Api, namespace: str, name: str) -> dict[str, Any]:
    """A Service (the API server's: `default/kubernetes`, observe/targets.py)."""
    found = await client.CoreV1Api(api).read_namespaced_service(name, namespace)
    return as_dict(api, found)


async def get_endpoint_slice(api: Api, namespace: str, name: str) -> dict[str, Any]:
    """An EndpointSlice (the API server keeps one named `kubernetes` in `default`)."""
    found = await client.DiscoveryV1Api(api).read_namespaced_endpoint_slice(name, namespace)
    return as_dict(api, found)


async def replace_status(
    api: Api, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
) -> str:
    """Replace a VenueService's whole status (JSON patch `add /status`; unlike a merge
    patch, a field missing from `status` is removed), fenced: refused (a conflict,
    `is_conflict`) unless the object is still at `resource_version`. Its new one."""
    ops = [{"op": "add", "path": "/status", "value": status}]
    if resource_version is not None:
        ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion",
                       "value": resource_version})  # fmt: skip
    path = custom_path(VENUESERVICES, namespace, name) + "/status"
    stored = await request(api, "PATCH", path, body=ops, content_type=JSON_PATCH)
    return str(stored["metadata"]["resourceVersion"])


async def read_status(api: Api, namespace: str, name: str) -> tuple[dict[str, Any], str]:
    """A VenueService's stored status and the resourceVersion it was read at."""
    found = await get_venueservice(api, namespace, name)
    return found.get("status") or {}, str(found["metadata"]["resourceVersion"])


async def get_custom(api: Api, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
    """A custom object (a VenueService, a ScaledObject, a Flux or Argo CD object) as a dict."""
    return await request(api, "GET", custom_path(resource, namespace, name))


async def patch_custom(
    api: Api, resource: Resource, namespace: str, name: str,
    ops: list[dict[str, Any]],
) -> None:  # fmt: skip
    """JSON patch; callers start `ops` with a resourceVersion test for optimistic concurrency."""
    await request(api, "PATCH", custom_path(resource, namespace, name), body=ops,
                  content_type=JSON_PATCH)  # fmt: skip


async def get_venueservice(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await get_custom(api, VENUESERVICES, namespace, name)


async def list_venueservices(api: Api, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every VenueService of the cluster, or of `namespace` only."""
    found = await request(api, "GET", custom_path(VENUESERVICES, namespace))
    return cast(list[dict[str, Any]], found.get("items", []))


async def annotate_venueservice(
    api: Api, namespace: str, name: str, annotations: dict[str, str]
) -> None:
    """Merge `annotations` into a VenueService's (a merge patch: no resourceVersion needed,
    nothing else is touched)."""
    patch = {"metadata": {"annotations": annotations}}
    await request(api, "PATCH", custom_path(VENUESERVICES, namespace, name), body=patch,
                  content_type=MERGE_PATCH)  # fmt: skip


def as_dict(api: Api, obj: Any) -> dict[str, Any]:
    """A client model as the plain camelCase dict the API speaks."""
    return cast(dict[str, Any], api.sanitize_for_serialization(obj))


async def get_deployment(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return as_dict(api, await client.AppsV1Api(api).read_namespaced_deployment(name, namespace))


async def patch_deployment(
    api: Api, namespace: str, name: str, ops: list[dict[str, Any]]
) -> dict[str, Any]:
    """JSON patch; callers start `ops` with a resourceVersion test for optimistic concurrency."""
    result = await client.AppsV1Api(api).patch_namespaced_deployment(
        name, namespace, ops, _content_type=JSON_PATCH
    )
    return as_dict(api, result)


def _items(api: Api, listed: Any) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], as_dict(api, listed)["items"])


async def list_replicasets(api: Api, namespace: str) -> list[dict[str, Any]]:
    return _items(api, await client.AppsV1Api(api).list_namespaced_replica_set(namespace))


async def list_pods(api: Api, namespace: str) -> list[dict[str, Any]]:
    return _items(api, await client.CoreV1Api(api).list_namespaced_pod(namespace))


async def list_jobs(api: Api, namespace: str) -> list[dict[str, Any]]:
    return _items(api, await client.BatchV1Api(api).list_namespaced_job(namespace))


async def list_events(api: Api, namespace: str, field_selector: str) -> list[dict[str, Any]]:
    listed = await client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=field_selector
    )
    return _items(api, listed)


async def get_cronjob(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return as_dict(api, await client.BatchV1Api(api).read_namespaced_cron_job(name, namespace))


async def get_job(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return as_dict(api, await client.BatchV1Api(api).read_namespaced_job(name, namespace))


def _model(model_class: Any, manifest: dict[str, Any]) -> Any:
    """`manifest` as the client's model of its kind, the body a create call is given."""
    model = model_class.from_dict(manifest)
    assert model is not None
    return model


async def create_job(api: Api, namespace: str, job: dict[str, Any]) -> None:
    """Create the Job `job` (a manifest); a 409 when one of its name exists."""
    await client.BatchV1Api(api).create_namespaced_job(namespace, _model(client.V1Job, job))


async def get_config_map(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return as_dict(api, await client.CoreV1Api(api).read_namespaced_config_map(name, namespace))


async def create_config_map(api: Api, namespace: str, config_map: dict[str, Any]) -> None:
    """Create the ConfigMap `config_map` (a manifest); a 409 when one of its name exists."""
    body = _model(client.V1ConfigMap, config_map)
    await client.CoreV1Api(api).create_namespaced_config_map(namespace, body)


async def merge_patch_config_map(
    api: Api, namespace: str, name: str, patch: dict[str, Any]
) -> None:
    """Merge patch; a `metadata.resourceVersion` in it makes the write a 409 if anyone wrote
    since that version was read."""
    await client.CoreV1Api(api).patch_namespaced_config_map(
        name, namespace, patch, _content_type=MERGE_PATCH
    )


async def get_hpa(api: Api, namespace: str, name: str) -> dict[str, Any]:
    hpa = await client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        name, namespace
    )
    return as_dict(api, hpa)


async def patch_hpa(api: Api, namespace: str, name: str, ops: list[dict[str, Any]]) -> None:
    await client.AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(
        name, namespace, ops, _content_type=JSON_PATCH
    )


async def get_scaled_object(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await get_custom(api, KEDA, namespace, name)


async def patch_scaled_object(
    api: Api, namespace: str, name: str, ops: list[dict[str, Any]]
) -> None:
    await patch_custom(api, KEDA, namespace, name, ops)


def resource_version_test(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": obj["metadata"]["resourceVersion"],
    }


def annotation_path(key: str) -> str:
    """The JSON pointer (RFC 6901) to annotation `key`: `~` as `~0`, `/` as `~1`."""
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")


def set_annotation_op(obj: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """The JSON-patch op setting annotation `key` on `obj` as read: the whole map when it has
    none yet (a pointer into a missing map fails the patch)."""
    if (obj.get("metadata") or {}).get("annotations") is None:
        return {"op": "add", "path": "/metadata/annotations", "value": {key: value}}
    return {"op": "add", "path": annotation_path(key), "value": value}


def unreadable(exc: Exception) -> str:
    """Why a Secret could not be read, safe to show: the HTTP status (403 without the
    optional Role, 404) or the error's type (KeyError: no such key); never its text."""
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__


async def secret_value(api: Api, namespace: str, ref: SecretKeyRef) -> str:
    """One key of a Secret, decoded. A credential (a URL with a token, a bearer token): the
    caller never logs it, nor an error's text beyond its type (KeyError: the key is missing)."""
    secret = await client.CoreV1Api(api).read_namespaced_secret(ref.name, namespace)
    return base64.b64decode((secret.data or {})[ref.key]).decode().strip()
