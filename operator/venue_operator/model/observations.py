"""What observe hands to assess: plain facts, each either a value or the reason it is missing.

Pure types, no I/O. A failed or empty observation is `unknown` with a reason,
never a silent zero: assess must be able to tell "0% errors" from "no data".
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ProbeFailure(StrEnum):
    """Why a health probe did not return a healthy answer."""

    CONNECTION_REFUSED = "ConnectionRefused"
    TIMEOUT = "Timeout"
    UNREACHABLE = "Unreachable"
    HTTP_STATUS = "HttpStatus"
    INVALID_JSON = "InvalidJson"
    CHECK_FAILING = "CheckFailing"
    NOT_ALLOWED = "NotAllowed"  # refused by the operator's tenant boundaries: never probed
    # timed out while the operator's own event loop ran late past the deadline: whether the
    # service answered in time is not known (a starved operator must not call services down)
    OPERATOR_LATE = "OperatorLate"


@dataclass(frozen=True)
class ProbeResult:
    """One GET of /health or /health/full."""

    failure: ProbeFailure | None = None
    detail: str = ""
    status_code: int | None = None
    checks: Mapping[str, str] = field(default_factory=dict)
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class Reading:
    """One metric: a value, or why there is none (Prometheus down, empty, NaN, ...)."""

    value: float | None = None
    unknown_reason: str | None = None

    @classmethod
    def of(cls, value: float) -> Reading:
        return cls(value=value)

    @classmethod
    def unknown(cls, reason: str) -> Reading:
        return cls(unknown_reason=reason)

    @property
    def no_series(self) -> bool:
        """Unknown because the answer had no series for the service (NO_SERIES, below)."""
        return (self.unknown_reason or "").startswith(NO_SERIES)


UNOBSERVED = Reading.unknown("not observed")
# The reason a metric's answer had no series for the service (prefix; the selector follows).
NO_SERIES = "no series for"


@dataclass(frozen=True)
class TenantRate:
    """One tenant's traffic in the rate window (read while an incident is open or near)."""

    tenant: str
    requests: float | None  # requests per second (None: not among the busiest read)
    failing: float  # 5xx per second


@dataclass(frozen=True)
class MetricReadings:
    """Prometheus readings for one service. Ratios are fractions (0.05 = 5%)."""

    request_rate: Reading = UNOBSERVED  # requests per second
    requests_served: Reading = UNOBSERVED  # the request counter (no series: never served one)
    error_rate: Reading = UNOBSERVED  # 5xx / all
    p99_latency: Reading = UNOBSERVED  # seconds
    pool_utilisation: Reading = UNOBSERVED  # in use / size
    pool_pending: Reading = UNOBSERVED  # waiting for a connection
    memory_utilisation: Reading = UNOBSERVED  # resident / limit
    rate_limited: Reading = UNOBSERVED  # 429 / all
    top_limited_tenants: tuple[tuple[str, float], ...] = ()  # (tenant, 429/s), worst first
    tenants: tuple[TenantRate, ...] = ()  # for the incident's impact, most failing first


@dataclass(frozen=True)
class Revision:
    """One ReplicaSet of the Deployment: a pod template it can roll back to."""

    number: int
    template_hash: str
    migration: str | None = None  # the template ships this schema migration
    backward_compatible: bool = False
    image: str | None = None  # its containers' images, comma-separated


@dataclass(frozen=True)
class Scaler:
    """An autoscaling/v2 HorizontalPodAutoscaler whose scaleTargetRef is the Deployment, and
    the KEDA ScaledObject that owns it, if one does (KEDA would reset the HPA)."""

    hpa: str
    min_replicas: int
    max_replicas: int
    scaled_object: str | None = None
    # The ScaledObject's own counts, read when one owns the HPA (None: not read).
    scaled_object_min: int | None = None
    scaled_object_max: int | None = None


@dataclass(frozen=True)
class GitOpsRef:
    """The GitOps object a Deployment's labels or annotations say applies it (a claim by the
    Deployment: untrusted until the object itself lists the Deployment, see decide/gitops.py)."""

    kind: str  # Kustomization | HelmRelease | Application
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class WorkloadState:
    """The Deployment as the watch-fed indexes see it."""

    found: bool
    name: str = ""
    desired: int = 0
    ready: int = 0
    revision: int | None = None
    template_hash: str | None = None
    revisions: tuple[Revision, ...] = ()
    paused: bool = False
    rollout_started_at: datetime | None = None
    crash_looping: int = 0  # pods in CrashLoopBackOff
    migration_running: bool = False
    rolled_back_to: str | None = None  # keys.ROLLED_BACK_TO on the Deployment
    unreadable: str | None = None  # why the operator cannot see the workload (RBAC)
    revision_history_limit: int | None = None
    scaler: Scaler | None = None  # who owns the replica count, if not the Deployment
    scaler_unreadable: str | None = None  # why HPAs (or the ScaledObject) cannot be seen
    gitops: GitOpsRef | None = None  # who re-applies the Deployment from Git, if anyone
    template_writer: str | None = None  # the field manager that last wrote the pod template

    @property
    def current(self) -> Revision | None:
        """The revision that runs the current pod template."""
        return next((r for r in self.revisions if r.template_hash == self.template_hash), None)


# a workload as read, or still being read: a cycle awaits it beside its probes and metrics
WorkloadRead = WorkloadState | Awaitable[WorkloadState]


@dataclass(frozen=True)
class Observations:
    at: datetime
    health: ProbeResult
    full_health: ProbeResult
    metrics: MetricReadings
    workload: WorkloadState
