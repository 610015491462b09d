"""Kopf registrations only: settings, watch-fed indexes, and one daemon per VenueService
that runs its loop (service_loop.py) every `spec.probe.interval`."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any

import httpx
import kopf
import structlog

from venue_operator import kube, memory
from venue_operator.act.writer import WorkloadWriter
from venue_operator.evaluation import Context, MetricsBatcher, evaluate
from venue_operator.events import KubeEvents
from venue_operator.model import GROUP, PLURAL, VERSION
from venue_operator.notify import Notifier
from venue_operator.observe import cluster
from venue_operator.observe.health import probe_session
from venue_operator.observe.prometheus import PrometheusReader
from venue_operator.service_loop import WORKLOAD_INDEXES, LoopPorts, ServiceLoop

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
    settings.posting.reporting_component = "venue-operator"
    settings.watching.server_timeout = 300
    lifetime = os.environ.get("VENUE_OPERATOR_PEERING_LIFETIME")
    if lifetime:
        settings.peering.mandatory = True
        settings.peering.lifetime = int(lifetime)
        settings.peering.stealth = True
    settings.networking.request_timeout = 30
    memo.api = await kube.connect()
    memo.http = httpx.AsyncClient(follow_redirects=False)  # paging webhooks
    memo.probes = probe_session()
    memo.ctx = Context(
        http=memo.probes,
        metrics=MetricsBatcher(PrometheusReader()),
        default_prometheus_url=os.environ.get("VENUE_OPERATOR_PROMETHEUS_URL") or None,
        metrics_max_age=float(os.environ.get("VENUE_OPERATOR_METRICS_MAX_AGE") or 0) or None,
    )
    memo.notifier = Notifier(memo.api, memo.http)
    memo.writer = WorkloadWriter(memo.api)
    memo.trimmer = asyncio.create_task(memory.trim_forever())


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    memo.trimmer.cancel()
    await memo.http.aclose()
    await memo.probes.close()
    await memo.api.close()


# --- watch-fed indexes: cluster state without per-cycle GETs ---------------------------
# async on purpose: Kopf runs sync handlers in a thread pool, a hop per watch event.


@kopf.index("apps", "v1", "deployments")
async def deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): cluster.deployment_summary(body)}


@kopf.index("apps", "v1", "replicasets")
async def replicasets(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    summary = cluster.replicaset_summary(body)
    return {(namespace, summary["deployment"]): summary} if summary["deployment"] else None


@kopf.index("", "v1", "pods")
async def pods(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    summary = cluster.pod_summary(body)
    return {(namespace, summary["replicaset"]): summary} if summary["replicaset"] else None


@kopf.index("batch", "v1", "jobs")
async def jobs(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    summary = cluster.job_summary(body)
    return {(namespace, summary["cronjob"]): summary} if summary["cronjob"] else None


@kopf.index(GROUP, VERSION, PLURAL)
async def venueservices(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    """Who claims which Deployment: the first VenueService naming one owns it."""
    deployment = ((body.get("spec") or {}).get("deployment") or {}).get("name")
    created = body.get("metadata", {}).get("creationTimestamp")
    return {(namespace, deployment): {"name": name, "created": created}} if deployment else None


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
    ns = namespace or "default"
    indexes = {k: kwargs[k] for k in (*WORKLOAD_INDEXES, "venueservices") if k in kwargs}
    ports = LoopPorts(
        evaluate=functools.partial(evaluate, memo.ctx),
        acts=memo.writer,
        events=KubeEvents(memo.api, body),
        write_status=functools.partial(kube.replace_status, memo.api, ns, name),
        page=functools.partial(memo.notifier.send, ns, name),
        forget_metrics=memo.ctx.metrics.forget,
        missing_permissions=getattr(memo, "missing_permissions", {}),
    )
    await ServiceLoop(ns, name, body, indexes, ports).run(stopped)
