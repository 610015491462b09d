"""What the loop says about itself: each problem once (an Event, said again only after it
cleared), and the loop's own conditions (record makes the others)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

import kopf
import structlog

from venue_operator.kube.status_store import StatusStore
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import Condition, EvaluationError, VenueServiceStatus
from venue_operator.record.transitions import EventSpec, condition
from venue_operator.remediate.ports import Events
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)


def _condition(status: VenueServiceStatus, kind: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == kind), None)


def with_condition(
    status: VenueServiceStatus, previous: VenueServiceStatus, kind: str, state: str,
    reason: str, message: str,
) -> VenueServiceStatus:  # fmt: skip
    """Add one of the loop's own conditions to `status`; its transition time is
    `previous`'s while the condition's status stays."""
    made = condition(kind, state, reason, message, datetime.now(UTC), _condition(previous, kind))
    return status.model_copy(update={"conditions": [*status.conditions, made]})


def alert_condition(
    spec: VenueServiceSpec, status: VenueServiceStatus, previous: VenueServiceStatus,
    problem: EventSpec | None,
) -> VenueServiceStatus:  # fmt: skip
    """`AlertsDelivered` while alerting through Alertmanager: False with the problem."""
    if spec.notification is None or spec.notification.alertmanager is None:
        return status
    if problem is not None:
        return with_condition(status, previous, "AlertsDelivered", "False",
                              str(problem.reason), problem.message)  # fmt: skip
    return with_condition(status, previous, "AlertsDelivered", "True", "Delivered",
                          "Alertmanager took every alert posted")  # fmt: skip


def observe_only_message(namespace: str) -> str:
    return (f"namespace {namespace} is not one the operator may act in (its "
            "--act-namespace flag): observed and reported, never acted on")  # fmt: skip


def observe_only_condition(
    status: VenueServiceStatus, previous: VenueServiceStatus, namespace: str, acts: bool
) -> VenueServiceStatus:
    """ActionsAllowed False (ObserveOnly) outside the namespaces the operator may act in."""
    if acts:
        return status
    return with_condition(status, previous, "ActionsAllowed", "False", "ObserveOnly",
                          observe_only_message(namespace))  # fmt: skip


class Reporter:
    """Problems said once until they clear, as Events on the VenueService."""

    def __init__(self, events: Events, body: kopf.Body) -> None:
        self.events, self.body = events, body
        self._said: set[str] = set()

    def cleared(self, what: str) -> None:
        self._said.discard(what)

    def cleared_all(self, prefix: str) -> None:
        self._said = {s for s in self._said if not s.startswith(prefix)}

    async def say_once(self, what: str, event: EventSpec, key: str = "") -> None:
        if what in self._said:
            return
        self._said.add(what)
        uid = self.body.meta.get("uid") or ""
        await self.events.post_once(None, event, f"{uid}/{what}/{key}/{time.time():.0f}")

    async def missing_permissions(self, missing: Mapping[str, str]) -> None:
        for what, why in sorted(missing.items()):
            event = EventSpec("Warning", Reason.PERMISSION_MISSING, why)
            await self.say_once(f"PermissionMissing:{what}", event)

    async def boundaries(self, namespace: str, clamped: tuple[str, ...], acts: bool) -> None:
        """One SpecClamped per clamped spec; one ObserveOnly while it may not act here."""
        said = "SpecClamped:" + "; ".join(clamped)
        self._said = {s for s in self._said if not s.startswith("SpecClamped:") or s == said}
        if clamped:
            message = ("spec clamped to the operator's caps (set by the cluster admin): "
                       + "; ".join(clamped))  # fmt: skip
            await self.say_once(said, EventSpec("Warning", Reason.SPEC_CLAMPED, message))
        if not acts:
            message = observe_only_message(namespace)
            await self.say_once("ObserveOnly", EventSpec("Warning", Reason.OBSERVE_ONLY, message))

    async def refused(self, refused: tuple[str, ...]) -> None:
        """One TargetRefused per refusal, said again only after it cleared."""
        now = {f"TargetRefused:{r}" for r in refused}
        self._said = {s for s in self._said if not s.startswith("TargetRefused:") or s in now}
        for reason in refused:
            event = EventSpec("Warning", Reason.TARGET_REFUSED, reason)
            await self.say_once(f"TargetRefused:{reason}", event)

    async def alert(self, problem: EventSpec | None) -> None:
        """One Event per alerting problem (refused URL, failed post), again after it cleared."""
        said = f"Alert:{problem.message}" if problem else None
        self._said = {s for s in self._said if not s.startswith("Alert:") or s == said}
        if problem is not None and said is not None:
            await self.say_once(said, problem)


async def report_failure(reporter: Reporter, store: StatusStore, key: str, exc: Exception) -> None:
    """Say in status (and once in an Event) that evaluating failed, without letting that
    failure escape too; the next good cycle clears `lastError`."""
    message = redact(f"{type(exc).__name__}: {exc}")[:500]
    error = EvaluationError(at=datetime.now(UTC), reason=type(exc).__name__, message=message)
    event = EventSpec("Warning", Reason.EVALUATION_FAILED, f"evaluation failed: {message}")
    try:
        await reporter.say_once(f"EvaluationFailed:{type(exc).__name__}", event)
        status = store.known.model_copy(update={"last_error": error})
        await store.save(status, "last_error")
    except Exception:
        log.warning("cycle.failure_not_recorded", service=key)
