"""The operator's own Kubernetes API calls (kubernetes.aio); Kopf does the watching.

Every call takes the opaque `Api` handle and answers plain camelCase dicts (the API's own
shape), never the client's models; a refusal is an `ApiError`. So the rest of the operator
never imports the client, and a test's fake answers what the API server would.

Every call is a raw `request`: the client's API classes and their generated models are never
loaded. They were 40 MB of the operator's RSS, and imported on first use they stalled the
event loop (CoreV1Api's module: 0.41 s at the first Event, every service's next cycle late).
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, cast

from kubernetes.aio import client, config
from kubernetes.aio.config.config_exception import ConfigException

from venue_operator.kube.errors import ApiError as ApiError
from venue_operator.kube.errors import is_conflict as is_conflict
from venue_operator.kube.errors import refusal as refusal
from venue_operator.model.spec import GROUP, PLURAL, VERSION, SecretKeyRef
from venue_operator.record.pauses import collector_paused

Api = client.ApiClient  # the connection every call takes (`connect`)
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
Resource = tuple[str, str, str]  # group ("" for the core API), version, plural
VENUESERVICES: Resource = (GROUP, VERSION, PLURAL)
KEDA: Resource = ("keda.sh", "v1alpha1", "scaledobjects")
SERVICES: Resource = ("", "v1", "services")
SECRETS: Resource = ("", "v1", "secrets")
CONFIG_MAPS: Resource = ("", "v1", "configmaps")
PODS: Resource = ("", "v1", "pods")
EVENTS: Resource = ("", "v1", "events")
ENDPOINT_SLICES: Resource = ("discovery.k8s.io", "v1", "endpointslices")
DEPLOYMENTS: Resource = ("apps", "v1", "deployments")
REPLICASETS: Resource = ("apps", "v1", "replicasets")
JOBS: Resource = ("batch", "v1", "jobs")
CRONJOBS: Resource = ("batch", "v1", "cronjobs")
HPAS: Resource = ("autoscaling", "v2", "horizontalpodautoscalers")


async def request(
    api: Api, method: str, path: str, *, query: Mapping[str, str] | None = None,
    body: Any = None, content_type: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One call to the API server, answered as the JSON it sent: no API class or model of the
    client is loaded (they are most of its memory). A refusal is an `ApiError`, as from them."""
    data = await fetch(api, method, path, query=query, body=body, content_type=content_type)
    with collector_paused():
        return cast(dict[str, Any], json.loads(data)) if data else {}


async def fetch(
    api: Api, method: str, path: str, *, query: Mapping[str, str] | None = None,
    body: Any = None, content_type: str | None = None,
) -> bytes:  # fmt: skip
    """`request`'s answer as the bytes sent, for a reader that parses it (record/pauses.py)."""
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
    return bytes(data)


def resource_path(resource: Resource, namespace: str | None, name: str = "") -> str:
    """The path of a resource's collection (cluster-wide when `namespace` is None), or of
    one object with `name`."""
    group, version, plural = resource
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    scope = f"/namespaces/{namespace}" if namespace is not None else ""
    return f"{root}{scope}/{plural}" + (f"/{name}" if name else "")


async def _get(api: Api, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
    return await request(api, "GET", resource_path(resource, namespace, name))


async def _list(
    api: Api, resource: Resource, namespace: str | None, query: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    found = await request(api, "GET", resource_path(resource, namespace), query=query)
    return cast(list[dict[str, Any]], found.get("items") or [])


async def _create(api: Api, resource: Resource, namespace: str, body: dict[str, Any]) -> None:
    await request(api, "POST", resource_path(resource, namespace), body=body)


async def _patch(
    api: Api, resource: Resource, namespace: str, name: str, patch: Any, content_type: str
) -> dict[str, Any]:
    path = resource_path(resource, namespace, name)
    return await request(api, "PATCH", path, body=patch, content_type=content_type)


async def connect(kubeconfig: str | None = None) -> Api:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    configuration = client.Configuration()
    if kubeconfig is None:
        with contextlib.suppress(ConfigException):
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(without_netrc(configuration))
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(without_netrc(configuration))


def without_netrc(configuration: Any) -> Any:
    """The client's aiohttp session trusts the environment: for its proxy, and for a
    ~/.netrc looked up in a thread before every request, a hop through the GIL each time
    (most of a saturated replica's Event posts, py-spy). The proxy the environment names for
    the API server is set on the client instead, and the session trusts nothing more."""
    host = urllib.parse.urlsplit(configuration.host)
    if (
        configuration.proxy is None
        and host.hostname
        and not urllib.request.proxy_bypass(host.hostname)
    ):
        configuration.proxy = urllib.request.getproxies().get(host.scheme)
    extra = getattr(configuration, "client_session_kwargs", None) or {}
    configuration.client_session_kwargs = {**extra, "trust_env": False}
    return configuration


def api_server_url(api: Api) -> str:
    """The API server's URL as this connection reaches it (in-cluster: the Service's IP)."""
    return cast(str, api.configuration.host)


async def get_service(api: Api, namespace: str, name: str) -> dict[str, Any]:
    """A Service (the API server's: `default/kubernetes`, observe/targets.py)."""
    return await _get(api, SERVICES, namespace, name)


async def get_endpoint_slice(api: Api, namespace: str, name: str) -> dict[str, Any]:
    """An EndpointSlice (the API server keeps one named `kubernetes` in `default`)."""
    return await _get(api, ENDPOINT_SLICES, namespace, name)


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
    path = resource_path(VENUESERVICES, namespace, name) + "/status"
    stored = await request(api, "PATCH", path, body=ops, content_type=JSON_PATCH)
    return str(stored["metadata"]["resourceVersion"])


async def read_status(api: Api, namespace: str, name: str) -> tuple[dict[str, Any], str]:
    """A VenueService's stored status and the resourceVersion it was read at."""
    found = await get_venueservice(api, namespace, name)
    return found.get("status") or {}, str(found["metadata"]["resourceVersion"])


async def get_custom(api: Api, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
    """A custom object (a VenueService, a ScaledObject, a Flux or Argo CD object) as a dict."""
    return await _get(api, resource, namespace, name)


async def patch_custom(
    api: Api, resource: Resource, namespace: str, name: str,
    ops: list[dict[str, Any]],
) -> None:  # fmt: skip
    """JSON patch; callers start `ops` with a resourceVersion test for optimistic concurrency."""
    await _patch(api, resource, namespace, name, ops, JSON_PATCH)


async def get_venueservice(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await get_custom(api, VENUESERVICES, namespace, name)


async def list_venueservices(api: Api, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every VenueService of the cluster, or of `namespace` only."""
    return await _list(api, VENUESERVICES, namespace)


async def annotate_venueservice(
    api: Api, namespace: str, name: str, annotations: dict[str, str]
) -> None:
    """Merge `annotations` into a VenueService's (a merge patch: no resourceVersion needed,
    nothing else is touched)."""
    patch = {"metadata": {"annotations": annotations}}
    await _patch(api, VENUESERVICES, namespace, name, patch, MERGE_PATCH)


async def get_deployment(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await _get(api, DEPLOYMENTS, namespace, name)


async def patch_deployment(
    api: Api, namespace: str, name: str, ops: list[dict[str, Any]]
) -> dict[str, Any]:
    """JSON patch; callers start `ops` with a resourceVersion test for optimistic concurrency."""
    return await _patch(api, DEPLOYMENTS, namespace, name, ops, JSON_PATCH)


async def list_replicasets(api: Api, namespace: str) -> list[dict[str, Any]]:
    return await _list(api, REPLICASETS, namespace)


async def list_pods(api: Api, namespace: str) -> list[dict[str, Any]]:
    return await _list(api, PODS, namespace)


async def list_jobs(api: Api, namespace: str) -> list[dict[str, Any]]:
    return await _list(api, JOBS, namespace)


async def list_events(api: Api, namespace: str, field_selector: str) -> list[dict[str, Any]]:
    return await _list(api, EVENTS, namespace, {"fieldSelector": field_selector})


async def create_event(api: Api, namespace: str, event: dict[str, Any]) -> None:
    """Create the Event `event` (a manifest); a 409 when one of its name exists."""
    await _create(api, EVENTS, namespace, event)


async def get_cronjob(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await _get(api, CRONJOBS, namespace, name)


async def get_job(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await _get(api, JOBS, namespace, name)


async def create_job(api: Api, namespace: str, job: dict[str, Any]) -> None:
    """Create the Job `job` (a manifest); a 409 when one of its name exists."""
    await _create(api, JOBS, namespace, job)


async def get_config_map(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await _get(api, CONFIG_MAPS, namespace, name)


async def create_config_map(api: Api, namespace: str, config_map: dict[str, Any]) -> None:
    """Create the ConfigMap `config_map` (a manifest); a 409 when one of its name exists."""
    await _create(api, CONFIG_MAPS, namespace, config_map)


async def merge_patch_config_map(
    api: Api, namespace: str, name: str, patch: dict[str, Any]
) -> None:
    """Merge patch; a `metadata.resourceVersion` in it makes the write a 409 if anyone wrote
    since that version was read."""
    await _patch(api, CONFIG_MAPS, namespace, name, patch, MERGE_PATCH)


async def get_hpa(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return await _get(api, HPAS, namespace, name)


async def patch_hpa(api: Api, namespace: str, name: str, ops: list[dict[str, Any]]) -> None:
    await _patch(api, HPAS, namespace, name, ops, JSON_PATCH)


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
    secret = await _get(api, SECRETS, namespace, ref.name)
    return base64.b64decode((secret.get("data") or {})[ref.key]).decode().strip()
