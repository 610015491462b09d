"""Kopf registrations only: settings, watch-fed indexes, and one daemon per VenueService
that runs the loop (cycle.py) every `spec.probe.interval`."""

from __future__ import annotations

import logging
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf
import structlog
from pydantic import ValidationError

from venue_operator import kube, telemetry
from venue_operator.cycle import Context, MetricsBatcher, evaluate, parse_status, status_patch
from venue_operator.model import GROUP, PLURAL, VERSION, VenueServiceSpec
from venue_operator.observations import WorkloadState
from venue_operator.observe import cluster
from venue_operator.observe.prometheus import PrometheusReader
from venue_operator.record import worth_writing
from venue_operator.redact import redact

log = structlog.get_logger(__name__)
ANNOTATION_PREFIX = "venue.ops.tickettoken.io"


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The CRD's status is schema'd: Kopf keeps its bookkeeping in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our Events are explicit; no log chatter
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    memo.api = await kube.connect()
    memo.http = httpx.AsyncClient(follow_redirects=False)
    memo.ctx = Context(
        http=memo.http,
        metrics=MetricsBatcher(PrometheusReader()),
        default_prometheus_url=os.environ.get("VENUE_OPERATOR_PROMETHEUS_URL") or None,
    )


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.http.aclose()
    await memo.api.close()


# --- watch-fed indexes: cluster state without per-cycle GETs ---------------------------


@kopf.index("apps", "v1", "deployments")
def deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): cluster.deployment_summary(body)}


@kopf.index("apps", "v1", "replicasets")
def replicasets(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    summary = cluster.replicaset_summary(body)
    return {(namespace, summary["deployment"]): summary} if summary["deployment"] else None


@kopf.index("", "v1", "pods")
def pods(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    summary = cluster.pod_summary(body)
    return {(namespace, summary["replicaset"]): summary} if summary["replicaset"] else None


@kopf.index("batch", "v1", "jobs")
def jobs(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    summary = cluster.job_summary(body)
    return {(namespace, summary["cronjob"]): summary} if summary["cronjob"] else None


def _workload(
    namespace: str, spec: VenueServiceSpec, indexes: dict[str, kopf.Index[Any, Any]]
) -> WorkloadState:
    name = spec.deployment.name
    found = list(indexes["deployments"].get((namespace, name), []))
    rs = list(indexes["replicasets"].get((namespace, name), []))
    pods_by_rs = {r["name"]: list(indexes["pods"].get((namespace, r["name"]), [])) for r in rs}
    migration: Any = indexes["jobs"].get((namespace, spec.remediation.migration.cron_job_name), [])
    return cluster.workload_state(found[0] if found else None, rs, pods_by_rs, list(migration))


# --- the loop ---------------------------------------------------------------------------


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def watch_venue_service(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    **kwargs: Any,
) -> None:
    """Runs until the VenueService is deleted; one failed cycle never stops the next."""
    namespace = namespace or "default"
    bound = log.bind(namespace=namespace, name=name)
    indexes = {k: kwargs[k] for k in ("deployments", "replicasets", "pods", "jobs")}
    first = _interval(body)
    await stopped.wait(random.uniform(0, min(first, 5.0)))  # jitter: spread the cycles
    invalid_reported = False
    while not stopped:
        started = time.monotonic()
        try:
            spec = VenueServiceSpec.model_validate(dict(body.spec))
            invalid_reported = False
            await _cycle(memo, namespace, name, body, spec, indexes)
        except ValidationError as exc:
            if not invalid_reported:
                message = redact(f"spec cannot be evaluated: {exc.errors()[0].get('msg')}")
                kopf.event(body, type="Warning", reason="InvalidSpec", message=message[:500])
                invalid_reported = True
        except Exception as exc:  # the loop must outlive its own bugs
            telemetry.ERRORS.labels(namespace, name).inc()
            bound.exception("cycle.failed")
            await _report_failure(memo, namespace, name, exc)
        finally:
            telemetry.EVALUATION_SECONDS.observe(time.monotonic() - started)
        await stopped.wait(max(0.1, _interval(body) - (time.monotonic() - started)))
    memo.ctx.metrics.forget(f"{namespace}/{name}")


def _interval(body: kopf.Body) -> float:
    try:
        return VenueServiceSpec.model_validate(dict(body.spec)).probe.interval.total_seconds()
    except ValidationError:
        return 15.0


async def _cycle(
    memo: kopf.Memo,
    namespace: str,
    name: str,
    body: kopf.Body,
    spec: VenueServiceSpec,
    indexes: dict[str, kopf.Index[Any, Any]],
) -> None:
    ctx: Context = memo.ctx
    stored = parse_status(body.status)
    workload = _workload(namespace, spec, indexes)
    outcome = await evaluate(
        ctx, namespace, name, spec, stored, workload, body.meta.get("generation")
    )
    telemetry.EVALUATIONS.labels(namespace, name).inc()
    for check in outcome.assessment.checks:
        telemetry.CHECK_LEVEL.labels(namespace, name, check.name).set(
            telemetry.LEVEL_VALUE[check.level.value]
        )
    if worth_writing(stored, outcome.status):
        await kube.patch_status(memo.api, namespace, name, status_patch(outcome.status))
        telemetry.STATUS_WRITES.inc()
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1000])
        telemetry.EVENTS.labels(event.reason).inc()
    log.debug("cycle.done", namespace=namespace, name=name, health=outcome.assessment.health)


async def _report_failure(memo: kopf.Memo, namespace: str, name: str, exc: Exception) -> None:
    """Say in status that evaluation failed, without letting that failure escape too."""
    message = redact(f"{type(exc).__name__}: {exc}")[:500]
    error = {"at": datetime.now(UTC).isoformat(), "reason": type(exc).__name__, "message": message}
    try:
        await kube.patch_status(memo.api, namespace, name, {"status": {"lastError": error}})
    except Exception:
        log.warning("cycle.failure_not_recorded", namespace=namespace, name=name)
