"""`venue-operator uninstall`: release the VenueServices an operator of an older version left
behind.

Up to 0.1.0, Kopf put a finalizer on every VenueService it ran a daemon for (the daemons
run without one since: cli/handlers.py), and removed it only when the VenueService was
deleted while the operator ran. With that operator gone, a deleted VenueService waits for
it forever (and so does its namespace). This removes that finalizer, and the operator's
bookkeeping annotations, from every VenueService left; run it after the operator's
Deployment is gone, before deleting the CRD. (A running operator of this version removes
the finalizer itself.)
"""

from __future__ import annotations

from typing import Any

from venue_operator.act.retry import retry_conflicts
from venue_operator.kube import calls

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"  # Kopf's default, which handlers keep
ANNOTATION_PREFIX = "venue.ops.tickettoken.io/"  # Kopf's progress, in handlers.configure


def release(item: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The JSON patch that releases one VenueService, or None if nothing is ours. The test
    ops make it refuse (422) if someone changed the finalizers in between."""
    meta = item["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    ours = [k for k in (meta.get("annotations") or {}) if k.startswith(ANNOTATION_PREFIX)]
    if FINALIZER not in finalizers and not ours:
        return None
    ops: list[dict[str, Any]] = [calls.resource_version_test(item)]
    if FINALIZER in finalizers:
        ops.append({"op": "replace", "path": "/metadata/finalizers",
                    "value": [f for f in finalizers if f != FINALIZER]})  # fmt: skip
    for key in ours:
        ops.append({"op": "remove", "path": calls.annotation_path(key)})
    return ops


async def _release_one(api: calls.Api, item: dict[str, Any]) -> bool:
    """Release one VenueService, re-reading it when it changed in between (its status is
    still being written while others' operators run); False if it had nothing of ours."""
    namespace, name = item["metadata"]["namespace"], item["metadata"]["name"]
    listed = [item]  # the first attempt plans from the list; each retry reads afresh

    async def attempt() -> bool:
        current = listed.pop() if listed else await calls.get_custom(
            api, calls.VENUESERVICES, namespace, name)  # fmt: skip
        ops = release(current)
        if ops is None:
            return False
        await calls.patch_custom(api, calls.VENUESERVICES, namespace, name, ops)
        return True

    try:
        return await retry_conflicts(attempt, f"releasing {namespace}/{name}")
    except calls.ApiError as exc:
        if exc.status == 404:  # deleted meanwhile (by its namespace's deletion): nothing holds it
            return False
        raise


async def run_uninstall(namespace: str | None = None) -> int:
    """Release every VenueService of the cluster, or of `namespace` only."""
    api = await calls.connect()
    failed = 0
    try:
        released = 0
        for item in await calls.list_venueservices(api, namespace):
            where = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
            try:
                if await _release_one(api, item):
                    released += 1
                    print(f"released {where}")
            except (calls.ApiError, RuntimeError) as exc:  # one stuck, go on with the rest
                failed += 1
                print(f"not released {where}: {getattr(exc, 'status', '')} {exc}"[:300])
        print(f"{released} VenueService(s) released, {failed} not; "
              + ("the CRD can be deleted now" if not failed else "run again"))  # fmt: skip
    finally:
        await api.close()
    return 1 if failed else 0
