"""What one VenueService's loop talks to (loop/service_loop.py): cli/handlers.py gives the
real ones, fast tests their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from venue_operator.fleet.board import FleetBoard
from venue_operator.fleet.rate import Rate
from venue_operator.guard.pod_series import Query
from venue_operator.guard.watch import ReadPods
from venue_operator.kube.status_store import StatusRead, StatusWrite
from venue_operator.loop.evaluation import Outcome
from venue_operator.loop.guard_clock import GuardClock
from venue_operator.loop.page_delivery import PageResults, SendPages
from venue_operator.loop.workload_watch import WorkloadWatch
from venue_operator.model.observations import WorkloadRead, WorkloadState
from venue_operator.model.spec import Notification, VenueServiceSpec
from venue_operator.model.status import VenueServiceStatus
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Acts, Events, GitOpsActs
from venue_operator.tenancy.policy import Tenancy

Evaluate = Callable[
    [str, str, VenueServiceSpec, VenueServiceStatus, WorkloadRead, int | None],
    Awaitable[Outcome],
]
# evaluation.expect_metrics: before a loop's first cycle, its metrics in the next read
Expect = Callable[[str, str, VenueServiceSpec, VenueServiceStatus], None]
# paging/alertmanager.py: post what the incident means for Alertmanager; the problem to report
Alert = Callable[[Notification | None, VenueServiceStatus], EventSpec | None]


async def _as_is(namespace: str, workload: WorkloadState) -> WorkloadState:
    return workload


@dataclass
class LoopPorts:
    """What one loop talks to."""

    evaluate: Evaluate  # observe + assess + record (evaluation.evaluate)
    acts: Acts  # the workload writer (act/writer.py)
    events: Events
    write_status: StatusWrite
    page: SendPages  # paging/webhook.py: the outbox's due pages, sent in the background
    read_status: StatusRead | None = None  # fences the writes (kube/status_store.py)
    # With shards (fleet/membership.py): the epoch this replica owns "namespace/name" in, or None
    owns: Callable[[str], int | None] | None = None
    renewing: Callable[[], bool] = lambda: False  # ... and its own Lease's renewal is late
    page_results: PageResults = list  # and what became of them since the last call
    expect_metrics: Expect = lambda namespace, name, spec, status: None
    forget_metrics: Callable[[str], None] = lambda key: None
    alert: Alert = lambda notification, status: None
    # index or verb -> why the operator cannot use it (missing RBAC), see kube/permissions.py
    missing_permissions: Mapping[str, str] = field(default_factory=dict)
    # the cluster admin's caps and where the operator may act (the flags' defaults here)
    tenancy: Tenancy = field(default_factory=Tenancy)
    # fills in the KEDA ScaledObject behind the Deployment's HPA (observe/scalers.py)
    read_scaler: Callable[[str, WorkloadState], Awaitable[WorkloadState]] = _as_is
    gitops: GitOpsActs | None = None  # suspends Flux/Argo CD after a rollback (act/writer.py)
    fleet: Rate | None = None  # the fleet-wide action rate (fleet/rate.py)
    board: FleetBoard | None = None  # every loop's breaches, and their storms (fleet/board.py)
    read_pods: ReadPods | None = None  # the rollout guard's pod reader (guard/pod_metrics.py)
    # its fallback for pods it cannot reach: Prometheus queries, and the default URL
    read_series: Query | None = None
    prometheus_url: str | None = None
    workloads: WorkloadWatch | None = None  # what `indexes` has of Pods, ReplicaSets, Jobs, HPAs
    # wakes the loop between rollouts when its guard has something to see (guard_clock.py)
    guard_clock: GuardClock | None = None
