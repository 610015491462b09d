"""The loop for one VenueService: every interval, observe -> assess -> record -> decide -> act.

Runs inside the Kopf daemon of that VenueService (handlers.py). It is the only
writer of the VenueService's status, so it keeps the status it last wrote and
trusts that over a possibly lagging watch.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any, cast

import kopf
import structlog
from pydantic import ValidationError

from venue_operator import kube, telemetry
from venue_operator.cycle import Context, evaluate, parse_status, status_patch
from venue_operator.decide import decide, rollout_facts
from venue_operator.model import VenueServiceSpec, VenueServiceStatus
from venue_operator.observations import WorkloadState
from venue_operator.observe import cluster
from venue_operator.record import EventSpec, write_causes
from venue_operator.redact import redact
from venue_operator.remediate import PAUSE_ANNOTATION, Remediator, Target, severity_pages

log = structlog.get_logger(__name__)
DEFAULT_INTERVAL_S = 15.0


def workload_from_indexes(
    namespace: str, spec: VenueServiceSpec, indexes: dict[str, kopf.Index[Any, Any]]
) -> tuple[WorkloadState, dict[str, Any] | None]:
    """The Deployment's state, and a reference to it for Events, from the watch caches."""
    name = spec.deployment.name
    found = list(indexes["deployments"].get((namespace, name), []))
    rs = list(indexes["replicasets"].get((namespace, name), []))
    pods_by_rs = {r["name"]: list(indexes["pods"].get((namespace, r["name"]), [])) for r in rs}
    migration: Any = indexes["jobs"].get((namespace, spec.remediation.migration.cron_job_name), [])
    deployment = found[0] if found else None
    ref = None
    if deployment is not None:
        meta = {"name": name, "namespace": namespace, "uid": deployment["uid"]}
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    return cluster.workload_state(deployment, rs, pods_by_rs, list(migration)), ref


class ServiceLoop:
    def __init__(
        self,
        memo: kopf.Memo,
        namespace: str,
        name: str,
        body: kopf.Body,
        indexes: dict[str, kopf.Index[Any, Any]],
    ) -> None:
        self.memo, self.namespace, self.name, self.body = memo, namespace, name, body
        self.indexes = indexes
        self.known: VenueServiceStatus | None = None  # what this loop last wrote
        self.written: VenueServiceStatus | None = None
        self.invalid_reported = False
        self.remediator = Remediator(
            api=memo.api, post=self._post, write_status=self._write, notify=self._page,
            pause_before_act=getattr(memo, "pause_before_act", 0.0),
        )  # fmt: skip
        self.spec: VenueServiceSpec | None = None  # the last valid spec
        self._raw_spec: dict[str, Any] | None = None

    async def run(self, stopped: kopf.DaemonStopped) -> None:
        # Spread the cycles over the whole interval: 1,000 services starting within a few
        # seconds of each other probe in bursts, and the bursts' loop lag reads as slow probes.
        await stopped.wait(random.uniform(0, self._interval()))
        while not stopped:
            started = time.monotonic()
            try:
                await self.cycle()
            except ValidationError as exc:
                self._invalid(exc)
            except Exception as exc:  # the loop must outlive its own bugs
                telemetry.ERRORS.labels(self.namespace, self.name).inc()
                log.exception("cycle.failed", namespace=self.namespace, name=self.name)
                await self._report_failure(exc)
            finally:
                telemetry.EVALUATION_SECONDS.observe(time.monotonic() - started)
            await stopped.wait(max(0.1, self._interval() - (time.monotonic() - started)))
        self.memo.ctx.metrics.forget(f"{self.namespace}/{self.name}")

    def _interval(self) -> float:
        try:
            return self._spec().probe.interval.total_seconds()
        except ValidationError:
            return DEFAULT_INTERVAL_S

    def _spec(self) -> VenueServiceSpec:
        """The validated spec, re-validated only when the spec changed (at 1,000 services,
        validating every cycle was 7% of the operator's CPU)."""
        raw = dict(self.body.spec)
        if self._raw_spec != raw or self.spec is None:
            self.spec = VenueServiceSpec.model_validate(raw)
            self._raw_spec = raw
        return self.spec

    def _invalid(self, exc: ValidationError) -> None:
        if not self.invalid_reported:
            message = redact(f"spec cannot be evaluated: {exc.errors()[0].get('msg')}")
            self._post(None, EventSpec("Warning", "InvalidSpec", message[:500]))
            self.invalid_reported = True

    async def cycle(self) -> None:
        if self.body.meta.get("deletionTimestamp"):
            return  # being deleted (e.g. its namespace is terminating): nothing left to heal
        spec = self._spec()
        self.invalid_reported = False
        ctx: Context = self.memo.ctx
        stored = self.known or parse_status(self.body.status)
        self.written = self.written or stored
        workload, deployment_ref = workload_from_indexes(self.namespace, spec, self.indexes)
        generation = self.body.meta.get("generation")
        outcome = await evaluate(ctx, self.namespace, self.name, spec, stored, workload, generation)
        self._count(outcome.assessment)
        status = outcome.status
        for event in outcome.events:
            self._post(None, event)
            if event.reason == "SeverityChanged" and severity_pages(status.severity):
                await self._page(status, event)
        self.known = status

        now = datetime.now(UTC)
        target = Target(self.namespace, self.name, spec, deployment_ref)
        status = await self.remediator.finish_in_progress(target, status, now)
        paused = (self.body.meta.get("annotations") or {}).get(PAUSE_ANNOTATION) == "true"
        decision = decide(outcome.assessment, rollout_facts(workload, status), status,
                          spec.remediation, now, paused)  # fmt: skip
        status = await self.remediator.carry_out(target, status, decision, now)
        self.known = status
        causes = write_causes(self.written, status)
        if causes:
            await self._write(status, causes[0])
        log.debug("cycle.done", namespace=self.namespace, name=self.name,
                  health=outcome.assessment.health, decision=decision.reason)  # fmt: skip

    def _count(self, assessment: Any) -> None:
        telemetry.EVALUATIONS.labels(self.namespace, self.name).inc()
        for check in assessment.checks:
            telemetry.CHECK_LEVEL.labels(self.namespace, self.name, check.name).set(
                telemetry.LEVEL_VALUE[check.level.value]
            )

    async def _write(self, status: VenueServiceStatus, cause: str = "remediation") -> None:
        await kube.patch_status(self.memo.api, self.namespace, self.name, status_patch(status))
        telemetry.STATUS_WRITES.labels(cause).inc()
        self.known = self.written = status

    def _post(self, ref: dict[str, Any] | None, event: EventSpec) -> None:
        obj = cast(kopf.Body, ref) if ref is not None else self.body
        kopf.event(obj, type=event.type, reason=event.reason,
                   message=redact(event.message)[:1000])  # fmt: skip
        telemetry.EVENTS.labels(event.reason).inc()

    async def _page(self, status: VenueServiceStatus, event: EventSpec) -> None:
        notification = self.spec.notification if self.spec else None
        self.memo.notifier.send(self.namespace, self.name, notification, status, event)

    async def _report_failure(self, exc: Exception) -> None:
        """Say in status that evaluation failed, without letting that failure escape too."""
        message = redact(f"{type(exc).__name__}: {exc}")[:500]
        error = {"at": datetime.now(UTC).isoformat(), "reason": type(exc).__name__,
                 "message": message}  # fmt: skip
        try:
            await kube.patch_status(self.memo.api, self.namespace, self.name,
                                    {"status": {"lastError": error}})  # fmt: skip
        except Exception:
            log.warning("cycle.failure_not_recorded", namespace=self.namespace, name=self.name)
