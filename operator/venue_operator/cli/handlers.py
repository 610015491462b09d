"""Kopf registrations: settings, watch-fed indexes, and one daemon per VenueService
that runs its loop (loop/service_loop.py) every `spec.probe.interval`.

The indexes and the daemon are registered by `serve`, after a permission check, only for
the resources the ServiceAccount may list and watch: a watch Kopf is refused makes it exit
(kube/permissions.py), while a missing index only leaves a gap that the loop reports.

The daemon runs without Kopf's finalizer, so nothing waits for an operator that is gone
(`helm uninstall`); it stops when the watch sees its VenueService deleted (loop/lifetime.py).
Kopf removes its finalizer from objects an older version left it on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kopf
import structlog

from venue_operator.act.writer import WorkloadWriter
from venue_operator.cli import memory
from venue_operator.cli.settings import Settings
from venue_operator.fleet.board import FleetBoard
from venue_operator.fleet.exchange import FleetExchange
from venue_operator.fleet.membership import Membership, RenewalThread
from venue_operator.fleet.rate import FleetRate, Rate, ShardedRate
from venue_operator.fleet.storm_watch import FleetWatch, Post
from venue_operator.guard.pod_metrics import read_pods
from venue_operator.kube import (
    calls,
    events,
    kopf_diffbase,
    kopf_readiness,
    leases,
    permissions,
    watches,
)
from venue_operator.kube.events import KubeEvents
from venue_operator.kube.permissions import PermissionReport
from venue_operator.loop import turns, workload_watch
from venue_operator.loop.evaluation import Context, evaluate, expect_metrics
from venue_operator.loop.guard_clock import GuardClock
from venue_operator.loop.lifetime import Deletions, Lifetime
from venue_operator.loop.loop_ports import LoopPorts
from venue_operator.loop.service_loop import ServiceLoop
from venue_operator.loop.workload_watch import WorkloadWatch
from venue_operator.model.spec import GROUP, PLURAL, VERSION
from venue_operator.observe import cluster, scalers
from venue_operator.observe.batcher import MetricsBatcher
from venue_operator.observe.http import Resolver, system_resolver
from venue_operator.observe.prometheus import PrometheusReader
from venue_operator.observe.targets import ProbeTargets
from venue_operator.paging.alertmanager import AlertmanagerSender
from venue_operator.paging.webhook import Pager
from venue_operator.record import loop_lag, pauses, telemetry

log = structlog.get_logger(__name__)
ANNOTATION_PREFIX = "venue.ops.tickettoken.io"
# How probe targets' host names are resolved (the lab's hostile tests replace it, as
# tests/fault_operator.py replaces the writer: the production code has no flag for it)
RESOLVER: Resolver = system_resolver


async def serve(ours: Settings) -> None:
    """Check the permissions, register what they allow, and run Kopf until it stops."""
    api = await calls.connect()
    try:
        found = await permissions.check(api, ours.namespaces, ours.shard_namespace)
    finally:
        await api.close()
    permissions.publish(found)
    register(found)
    kopf_readiness.install()
    await kopf.operator(
        standalone=not ours.peering,
        peering_name=ours.peering,
        priority=ours.priority,
        clusterwide=ours.clusterwide,
        namespaces=ours.namespaces,
        liveness_endpoint=ours.liveness_endpoint,
        memo=kopf.Memo(
            settings=ours,
            permissions=found,
            missing_permissions=dict(found.missing),
            deletions=Deletions(),
        ),
    )


def register(found: PermissionReport, registry: kopf.OperatorRegistry | None = None) -> None:
    """The indexes and the daemon whose resources the ServiceAccount may list and watch."""
    for name, (version, fn) in INDEXES.items():
        need = permissions.WATCHED[name]
        if found.allows(name):
            kopf.index(need.group, version, need.resource, id=name, registry=registry)(fn)
    if found.allows(permissions.VENUESERVICES.key):
        registry = registry if registry is not None else kopf.get_default_registry()
        kopf.on.event(GROUP, VERSION, PLURAL, when=_is_deletion, registry=registry)(
            venueservice_deleted
        )
        kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0, registry=registry)(
            watch_venue_service
        )
        without_finalizer(registry)
    kopf_diffbase.check_registry(registry or kopf.get_default_registry())


def without_finalizer(registry: kopf.OperatorRegistry) -> None:
    """Kopf's daemons require its finalizer: `requires_finalizer=True`, fixed in `kopf.daemon`
    (an option was declined: nolar/kopf#896). Ours stop on the deletion without one."""
    spawning = registry._spawning  # no public way: the handlers are frozen dataclasses
    spawning._handlers = [
        dataclasses.replace(handler, requires_finalizer=False) for handler in spawning._handlers
    ]


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo.settings  # `settings` is Kopf's own
    # The CRD's status is schema'd: Kopf keeps its bookkeeping in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf_diffbase.NoDiffBase()
    settings.posting.level = logging.WARNING  # our Events are explicit; no log chatter
    settings.posting.reporting_component = "venue-operator"
    settings.watching.server_timeout = 300
    if ours.peering:
        settings.peering.mandatory = True
        settings.peering.lifetime = ours.peering_lifetime
        settings.peering.stealth = True
    settings.networking.request_timeout = 30
    memo.api = await calls.connect()
    memo.http = httpx.AsyncClient(follow_redirects=False)  # paging webhooks
    # the API server as this operator reaches it: never a service URL a tenant may name
    tenancy = dataclasses.replace(ours.tenancy, api_server=calls.api_server_url(memo.api))
    targets = ProbeTargets(tenancy, resolver=RESOLVER)
    await targets.refresh(memo.api)  # the API server's addresses before the first probe
    memo.ctx = Context(
        dialer=targets.dialer,
        metrics=MetricsBatcher(
            PrometheusReader(
                limits=ours.prometheus_limits,
                auth=ours.prometheus_auth,
                auth_url=ours.prometheus_url,
            )
        ),
        default_prometheus_url=ours.prometheus_url,
        metrics_max_age=ours.metrics_max_age,
        tenancy=tenancy,
    )
    memo.pager = Pager(memo.api, memo.http)
    memo.alerts = AlertmanagerSender(memo.api, memo.http, ours.alertmanager_url, ours.tenancy,
                                     ours.alertmanager_resend)  # fmt: skip
    memo.writer = WorkloadWriter(memo.api)
    memo.watch_api = await calls.connect()
    memo.workloads = _workload_watch(memo.watch_api, ours, memo.permissions)
    memo.guard_clock = GuardClock()
    per_minute = tenancy.caps.fleet_actions_per_minute
    memo.board = FleetBoard(ours.storm) if ours.storm.enabled else None
    memo.membership, memo.fleet = await _membership(memo.api, ours, memo.board, per_minute)
    memo.fleet_watch = None
    if memo.board is not None:
        announces = None if memo.membership is None else memo.membership.owns
        watch = FleetWatch(memo.board, _on_own_pod(memo.api), announces=announces)
        memo.fleet_watch = asyncio.create_task(watch.run_forever())
    pauses.time_collections()
    memo.presence = turns.Presence()
    memo.recount = asyncio.create_task(memo.presence.recount_forever())
    memo.trimmer = asyncio.create_task(memory.trim_forever())
    memo.lag = asyncio.create_task(loop_lag.measure_lag())
    memo.api_server_refresher = asyncio.create_task(targets.refresh_forever(memo.api))


def _workload_watch(api: Any, ours: Settings, found: PermissionReport) -> WorkloadWatch:
    """Its own connection: a watch holds one for minutes, and never delays a status write."""
    kinds = tuple(k for k in workload_watch.KINDS if found.allows(k))
    watch = WorkloadWatch(functools.partial(watches.list_each, api),
                          functools.partial(watches.watch, api),
                          permissions.scopes(ours.namespaces), kinds)  # fmt: skip
    watch.start()
    return watch


async def _membership(
    api: Any, ours: Settings, board: FleetBoard | None, per_minute: int
) -> tuple[Membership | None, Rate | None]:
    """--shards: this replica's Lease, renewed in the background; it owns services once the
    first renewal is in (a failed one: after a later one). The fleet rate, and what the storm
    guard and the rate count: this process alone, or every shard through the Leases."""
    log.info("fleet.counted", by="leases" if ours.shard else "process",
             storm_guard=board is not None, actions_per_minute=per_minute)  # fmt: skip
    if ours.shard is None or ours.shard_namespace is None:
        telemetry.FLEET_REPLICAS.labels("process").set(1)
        return None, FleetRate(per_minute) if per_minute > 0 else None
    lease = timedelta(seconds=ours.shard_lease)
    thread = RenewalThread()  # with its own connection: a busy main loop delays no renewal
    renewals = await thread.connect(calls.connect)
    membership = Membership(
        ours.shard,
        functools.partial(leases.renew, renewals, ours.shard_namespace, ours.shard, lease),
        functools.partial(leases.members, renewals, ours.shard_namespace), lease,
        thread=thread,
    )  # fmt: skip
    rate = None
    if per_minute > 0:
        rate = ShardedRate(per_minute, ours.shard, lambda: membership.members)
    if board is not None or rate is not None:
        membership.exchange = FleetExchange(ours.shard, board, rate)
    with contextlib.suppress(Exception):  # logged by run_forever's next try
        await membership.tick()
    membership.task = asyncio.create_task(membership.run_forever())
    return membership, rate


def _on_own_pod(api: Any) -> Post | None:
    """Fleet Events go on the operator's own Pod (POD_NAME and POD_NAMESPACE, from the
    downward API in the chart and manifests/); without them, only the log and /metrics."""
    name, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
    if not name or not namespace:
        log.info("fleet.events_off", why="POD_NAME or POD_NAMESPACE not set")
        return None
    ref = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}}
    return functools.partial(events.post_once, api, ref)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.workloads.stop()
    await memo.watch_api.close()
    memo.trimmer.cancel()
    memo.recount.cancel()
    memo.lag.cancel()
    if memo.fleet_watch is not None:
        memo.fleet_watch.cancel()
    ours: Settings = memo.settings
    if memo.membership is not None and ours.shard_namespace is not None:
        memo.membership.task.cancel()
        with contextlib.suppress(Exception):  # the Lease then expires on its own
            await leases.release(memo.api, ours.shard_namespace, memo.membership.me)
        if memo.membership.thread is not None:
            await memo.membership.thread.close()
    memo.api_server_refresher.cancel()
    memo.ctx.metrics.reader.close()
    await memo.http.aclose()
    await memo.api.close()


@kopf.on.probe(id="permissions")
async def permissions_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """In `/healthz`, which stays 200: a restart cannot grant a missing permission."""
    found: PermissionReport = memo.permissions
    return found.probe()


# --- watch-fed indexes: cluster state without per-cycle GETs ---------------------------
# async on purpose: Kopf runs sync handlers in a thread pool, a hop per watch event.
# Registered by `register`, under the names the daemon receives them by.


async def deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): cluster.deployment_summary(body)}


async def venueservices(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    """Who claims which Deployment: the first VenueService naming one owns it."""
    deployment = ((body.get("spec") or {}).get("deployment") or {}).get("name")
    created = body.get("metadata", {}).get("creationTimestamp")
    return {(namespace, deployment): {"name": name, "created": created}} if deployment else None


# name -> (API version, handler); the group and resource are permissions.WATCHED[name]'s.
# Pods, ReplicaSets, Jobs and HPAs are the operator's own watch's (loop/workload_watch.py).
INDEXES: dict[str, tuple[str, Callable[..., Any]]] = {
    "deployments": ("v1", deployments),
    "venueservices": (VERSION, venueservices),
}


# --- the loop ---------------------------------------------------------------------------


def _is_deletion(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


async def venueservice_deleted(uid: str, memo: kopf.Memo, **_: Any) -> None:
    """The watch saw a VenueService deleted: its loop stops (loop/lifetime.py)."""
    deletions: Deletions = memo.deletions
    deletions.mark(uid)


async def watch_venue_service(
    namespace: str | None,
    name: str,
    uid: str,
    body: kopf.Body,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    **kwargs: Any,
) -> None:
    """Runs until the VenueService is deleted; one failed cycle never stops the next."""
    ns = namespace or "default"
    deletions: Deletions = memo.deletions
    lifetime = Lifetime(stopped, deletions.event(uid))
    indexes = {k: kwargs[k] for k in INDEXES if k in kwargs}  # those registered only
    membership: Membership | None = memo.membership
    board: FleetBoard | None = memo.board

    def present() -> None:  # another member runs it: counted here all the same
        if board is not None:
            board.present(ns, name, turns.depends_on(body.spec), datetime.now(UTC))

    def build() -> ServiceLoop:  # only while this replica runs it: 3,750 of 5,000 wait
        ports = _ports(memo, ns, name, body, lifetime)
        return ServiceLoop(ns, name, body, {**indexes, **memo.workloads.indexes()}, ports)

    try:
        await turns.take_turns(
            f"{ns}/{name}", membership, build, lifetime, present,
            None if membership is None else membership.period, memo.presence,
        )  # fmt: skip
    finally:
        deletions.forget(uid)


def _ports(memo: kopf.Memo, ns: str, name: str, body: kopf.Body, lifetime: Lifetime) -> LoopPorts:
    """What one VenueService's loop reaches the world through."""
    return LoopPorts(
        evaluate=functools.partial(evaluate, memo.ctx),
        acts=memo.writer,
        events=KubeEvents(memo.api, body),
        write_status=lifetime.ends_on_not_found(
            functools.partial(calls.replace_status, memo.api, ns, name)
        ),
        read_status=functools.partial(calls.read_status, memo.api, ns, name),
        owns=None if memo.membership is None else memo.membership.holds,
        renewing=(lambda: False) if memo.membership is None else memo.membership.renewing,
        page=functools.partial(memo.pager.send, ns, name),
        page_results=functools.partial(memo.pager.results, ns, name),
        expect_metrics=functools.partial(expect_metrics, memo.ctx),
        forget_metrics=memo.ctx.metrics.forget,
        alert=functools.partial(memo.alerts.update, ns, name),
        missing_permissions=memo.missing_permissions,
        tenancy=memo.ctx.tenancy,
        read_scaler=functools.partial(scalers.with_scaled_object, memo.api),
        gitops=memo.writer,
        fleet=memo.fleet,
        board=memo.board,
        read_pods=read_pods,
        read_series=memo.ctx.metrics.reader.query,
        prometheus_url=memo.ctx.default_prometheus_url,
        workloads=memo.workloads,
        guard_clock=memo.guard_clock,
    )
