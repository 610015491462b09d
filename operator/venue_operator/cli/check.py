"""`venue-operator check NAME`: one evaluation against a live cluster, printed as a table.

Reads the VenueService and its workload with plain GETs (no watches), runs the
same observe -> assess code as the operator, and writes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from venue_operator.kube import calls
from venue_operator.kube.status_store import parse_status
from venue_operator.loop.evaluation import Context, evaluate
from venue_operator.model.observations import WorkloadState
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.observe import cluster
from venue_operator.observe.batcher import MetricsBatcher
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Limits
from venue_operator.observe.prometheus import PrometheusReader
from venue_operator.observe.targets import ProbeTargets
from venue_operator.record.transitions import describe
from venue_operator.tenancy.policy import Tenancy


async def _workload(api: calls.Api, namespace: str, spec: VenueServiceSpec) -> WorkloadState:
    name = spec.deployment.name
    try:
        dep = await calls.get_deployment(api, namespace, name)
    except calls.ApiError as exc:
        if exc.status == 404:
            return WorkloadState(found=False)
        raise
    rs_all = await calls.list_replicasets(api, namespace)
    rs = [s for s in map(cluster.replicaset_summary, rs_all) if s["deployment"] == name]
    pods = [cluster.own_view(cluster.pod_summary(p), spec.deployment.container, spec.service.port)
            for p in await calls.list_pods(api, namespace)]  # fmt: skip
    jobs = [cluster.job_summary(j) for j in await calls.list_jobs(api, namespace)]
    by_rs = {r["name"]: [p for p in pods if p["replicaset"] == r["name"]] for r in rs}
    migration = [j for j in jobs if j["cronjob"] == spec.remediation.migration.cron_job_name]
    return cluster.workload_state(cluster.deployment_summary(dep), rs, by_rs, migration)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


async def run_check(
    namespace: str, name: str, prometheus_url: str | None, tenancy: Tenancy | None = None,
    auth: PrometheusAuth | None = None, limits: Limits | None = None,
) -> int:  # fmt: skip
    api = await calls.connect()
    tenancy = dataclasses.replace(tenancy or Tenancy(), api_server=calls.api_server_url(api))
    targets = ProbeTargets(tenancy)
    try:
        body: dict[str, Any] = await calls.get_venueservice(api, namespace, name)
        spec = VenueServiceSpec.model_validate(body["spec"])
        workload = await _workload(api, namespace, spec)
        await targets.refresh(api)
    finally:
        await api.close()
    ctx = Context(
        dialer=targets.dialer,
        metrics=MetricsBatcher(PrometheusReader(limits=limits, auth=auth, auth_url=prometheus_url)),
        default_prometheus_url=prometheus_url,
        tenancy=tenancy,
    )
    outcome = await evaluate(
        ctx, namespace, name, spec, parse_status(body.get("status")), workload, None
    )
    a = outcome.assessment
    rows = [["CHECK", "OBSERVED", "CONFIRMED", "VALUE", "WARNING", "CRITICAL", "RUNBOOK"]]
    for c in a.checks:
        unit = "" if c.unit is None else (c.unit if c.unit in ("%", "ms") else f" {c.unit}")
        value = "" if c.value is None else f"{c.value:g}{unit}"
        thresholds = [_num(c.warning), _num(c.critical)]
        rows.append([c.name, str(c.observed), str(c.level), value, *thresholds, c.section])
    print(
        f"{namespace}/{name}: {a.health} ({a.severity}), metrics available: {a.metrics_available}"
    )
    print(_table(rows))
    notes = [describe(c) for c in a.checks if c.reason]
    if notes:
        print("\n" + "\n".join(notes))
    print("\n(confirmed levels include the stored hysteresis; nothing was written)")
    return 0
