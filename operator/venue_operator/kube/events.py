"""Events, the audit trail `kubectl describe` shows, each created by this module.

Transition Events (a check breached, recovered, the severity moved) are the causes:
created as the cycle sees them, before what they lead to. An action's Events,
escalations and reasons for holding back are each posted under a name derived from their
correlation id or incident key: a second create (a retried status write, a restart) is a
409, so each is posted once however often the cycle is repeated.

kubectl sorts Events by lastTimestamp, which the API keeps in whole seconds, and lists
ties in no set order: an Event posted after a cause is stamped at least a second after
it (at most a second ahead of the clock), so that the breach is read before the rollback.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import structlog

from venue_operator.kube import calls
from venue_operator.record import telemetry
from venue_operator.record.transitions import EventSpec
from venue_operator.tenancy.redact import one_line

log = structlog.get_logger(__name__)
COMPONENT = "venue-operator"
# Which replica posted it: its Pod's name, the shard member's (--shards runs several).
INSTANCE = os.environ.get("POD_NAME") or COMPONENT
MESSAGE_LIMIT = 1000


def event_name(object_name: str, key: str) -> str:
    """A valid, deterministic Event name for (object, key)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{object_name[:200]}.{digest}"


def whole_second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


class KubeEvents:
    """Events about one VenueService (ref None) or the Deployment it heals (a ref)."""

    def __init__(self, api: calls.Api, body: kopf.Body) -> None:
        self.api, self.body = api, body
        self._cause_at: datetime | None = None  # the stamp of the last transition Event

    def _ref(self, ref: dict[str, Any] | None) -> dict[str, Any]:
        if ref is not None:
            return ref
        meta = self.body.meta
        identity = {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}
        return {"apiVersion": self.body.get("apiVersion"), "kind": self.body.get("kind"),
                "metadata": identity}  # fmt: skip

    async def post(self, ref: dict[str, Any] | None, event: EventSpec) -> None:
        """A transition (a cause), created now under a name of its own."""
        self._cause_at = whole_second(datetime.now(UTC))
        key = f"transition/{time.time_ns()}/{event.message}"
        await post_once(self.api, self._ref(ref), event, key, self._cause_at)

    async def post_once(self, ref: dict[str, Any] | None, event: EventSpec, key: str) -> bool:
        """Create the Event named after `key`, stamped after the last cause; False when it
        already exists."""
        at = after_cause(whole_second(datetime.now(UTC)), self._cause_at)
        return await post_once(self.api, self._ref(ref), event, key, at)


def after_cause(now: datetime, cause_at: datetime | None) -> datetime:
    """`now`, or the second after the cause's when that is later (the same second)."""
    if cause_at is None:
        return now
    return max(now, cause_at + timedelta(seconds=1))


async def post_once(
    api: calls.Api, target: dict[str, Any], event: EventSpec, key: str,
    at: datetime | None = None,
) -> bool:  # fmt: skip
    """Create the Event about `target` (apiVersion, kind, metadata) named after `key`, stamped
    `at` (default now); False when it already exists."""
    meta = target["metadata"]
    now = (at or datetime.now(UTC)).isoformat()
    body = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name(meta["name"], f"{target['kind']}/{key}/{event.reason}"),
                     "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": target["apiVersion"], "kind": target["kind"],
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid")},
        "type": event.type, "reason": str(event.reason),
        "message": one_line(event.message, MESSAGE_LIMIT),
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": INSTANCE, "firstTimestamp": now, "lastTimestamp": now,
        "count": 1,
    }  # fmt: skip
    try:
        await calls.create_event(api, meta["namespace"], body)
    except calls.ApiError as exc:
        if exc.status == 409:
            return False
        # Events are the audit trail's second copy (status has the first): log, go on.
        log.warning("event.not_posted", reason=str(event.reason), status=exc.status,
                    namespace=meta["namespace"], name=meta["name"])  # fmt: skip
        return True
    except Exception as exc:  # the transport (a timeout, a dropped connection): the same
        log.warning("event.not_posted", reason=str(event.reason), error=type(exc).__name__,
                    namespace=meta["namespace"], name=meta["name"])  # fmt: skip
        return True
    telemetry.EVENTS.labels(str(event.reason)).inc()
    return True
