"""Lists and watches as plain JSON (kube/calls.request's way: no client model is built), for
the operator's own workload watch (loop/workload_watch.py): a list in pages, then a watch
from the list's resourceVersion, line by line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp

from venue_operator.kube.calls import Api, ApiError, fetch
from venue_operator.record.pauses import collector_paused

PAGE = 500  # objects per list page: the whole list is never held at once
# Where each watched kind is served, cluster-wide ("") or in one namespace.
PATHS = {
    "pods": ("/api/v1", "pods"),
    "replicasets": ("/apis/apps/v1", "replicasets"),
    "jobs": ("/apis/batch/v1", "jobs"),
    "horizontalpodautoscalers": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
}


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def path(kind: str, namespace: str) -> str:
    prefix, plural = PATHS[kind]
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


async def list_each(api: Api, where: str, keep: Callable[[dict[str, Any]], None]) -> str:
    """Every object at `where`, one page at a time, handed to `keep`; the list's
    resourceVersion (a watch from it misses nothing)."""
    token: str | None = None
    while True:
        query = {"limit": str(PAGE), **({"continue": token} if token else {})}
        data = await fetch(api, "GET", where, query=query)
        with collector_paused():  # a page of 500 Pods is ~50,000 objects, dropped once kept
            page = json.loads(data)
            for item in page.get("items") or []:
                keep(item)
            meta: Mapping[str, Any] = page.get("metadata") or {}
            del page
        token = meta.get("continue")
        if not token:
            return str(meta.get("resourceVersion") or "")


async def watch(
    api: Api, where: str, resource_version: str, timeout_s: int
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(type, object) per change after `resource_version` until the server ends the watch
    (`timeout_s`); BOOKMARK events carry only a newer resourceVersion. `Gone` on a 410."""
    query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
             "timeoutSeconds": str(timeout_s)}  # fmt: skip
    serialized = await api.param_serialize(
        "GET", where, query_params=list(query.items()),
        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
    )  # fmt: skip
    limit = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_s + 30)
    response = await api.call_api(*serialized, _request_timeout=limit)
    try:
        if response.status == 410:
            raise Gone(where)
        if response.status != 200:
            body = (await response.read()).decode(errors="replace")
            raise ApiError.from_response(http_resp=response, body=body, data=None)
        buffer = b""
        # by chunk, not aiohttp's readline: a line longer than its 64 KiB limit (a Pod with
        # many managedFields) would end the watch with an error
        async for chunk in response.response.content.iter_any():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield _event(json.loads(line), where)
    finally:
        response.response.release()


def _event(event: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    kind, obj = str(event.get("type")), event.get("object") or {}
    if kind == "ERROR":
        if obj.get("code") == 410:
            raise Gone(where)
        raise RuntimeError(f"watch {where}: {obj.get('message') or obj}")
    return kind, obj
