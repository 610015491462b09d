"""Events, the audit trail `kubectl describe` shows: posted through Kopf, or once by name.

Transition Events (a check breached, recovered) go through Kopf's poster. An action's
Events, escalations and reasons for holding back are each posted under a name derived
from their correlation id or incident key: a second create (a retried status write, a
restart) is a 409, so each is posted once however often the cycle is repeated.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, cast

import kopf
import structlog
from kubernetes.aio import client

from venue_operator.record import telemetry
from venue_operator.record.transitions import EventSpec
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)
COMPONENT = "venue-operator"
MESSAGE_LIMIT = 1000


def event_name(object_name: str, key: str) -> str:
    """A valid, deterministic Event name for (object, key)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{object_name[:200]}.{digest}"


class KubeEvents:
    """Events about one VenueService (ref None) or the Deployment it heals (a ref)."""

    def __init__(self, api: client.ApiClient, body: kopf.Body) -> None:
        self.api, self.body = api, body

    def _ref(self, ref: dict[str, Any] | None) -> dict[str, Any]:
        if ref is not None:
            return ref
        meta = self.body.meta
        identity = {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}
        return {"apiVersion": self.body.get("apiVersion"), "kind": self.body.get("kind"),
                "metadata": identity}  # fmt: skip

    def post(self, ref: dict[str, Any] | None, event: EventSpec) -> None:
        """Queued through Kopf (fire and forget)."""
        obj = cast(kopf.Body, ref) if ref is not None else self.body
        kopf.event(obj, type=event.type, reason=str(event.reason),
                   message=redact(event.message)[:MESSAGE_LIMIT])  # fmt: skip
        telemetry.EVENTS.labels(str(event.reason)).inc()

    async def post_once(self, ref: dict[str, Any] | None, event: EventSpec, key: str) -> bool:
        """Create the Event named after `key`; False when it already exists."""
        return await post_once(self.api, self._ref(ref), event, key)


async def post_once(
    api: client.ApiClient, target: dict[str, Any], event: EventSpec, key: str
) -> bool:
    """Create the Event about `target` (apiVersion, kind, metadata) named after `key`; False
    when it already exists."""
    meta = target["metadata"]
    now = datetime.now(UTC).isoformat()
    body: Any = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name(meta["name"], f"{target['kind']}/{key}/{event.reason}"),
                     "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": target["apiVersion"], "kind": target["kind"],
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid")},
        "type": event.type, "reason": str(event.reason),
        "message": redact(event.message)[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT, "firstTimestamp": now, "lastTimestamp": now,
        "count": 1,
    }  # fmt: skip
    try:
        await client.CoreV1Api(api).create_namespaced_event(meta["namespace"], body)
    except client.ApiException as exc:
        if exc.status == 409:
            return False
        # Events are the audit trail's second copy (status has the first): log, go on.
        log.warning("event.not_posted", reason=str(event.reason), status=exc.status,
                    namespace=meta["namespace"], name=meta["name"])  # fmt: skip
        return True
    telemetry.EVENTS.labels(str(event.reason)).inc()
    return True
