"""What `venue-operator run` was told: one frozen object, built by cli/main.py from the command
line and handed to the handlers in Kopf's memo (`memo.settings`), instead of environment
variables passed between modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from venue_operator.decide.storm import StormRule
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Limits
from venue_operator.paging import alerts
from venue_operator.tenancy.policy import Tenancy


@dataclass(frozen=True)
class Settings:
    """The operator's run settings; the defaults are the command line's."""

    namespaces: tuple[str, ...] = ()
    """Namespaces (or Kopf globs such as `prod-*`) to watch; empty: the whole cluster."""

    prometheus_url: str | None = None
    """Prometheus for VenueServices whose spec names none (None: those have no metrics)."""

    alertmanager_url: str | None = None
    """Alertmanager for VenueServices whose spec.notification.alertmanager names none."""

    alertmanager_resend: timedelta = alerts.RESEND
    """How often an open incident's alert is re-sent (it stays valid for 4 of these)."""

    metrics_max_age: float | None = None
    """Oldest shared Prometheus snapshot a cycle may use, in seconds; None: half the
    VenueService's probe interval."""

    liveness_port: int = 8080
    """Port of Kopf's `/healthz`; 0 disables it."""

    service_metrics: str = "full"
    """Per VenueService on /metrics: "full" (each check's value and thresholds too, for the
    dashboard) or "alerts" (what the PrometheusRule reads: about half the series)."""

    metrics_port: int = 9090
    """Port of the operator's own Prometheus metrics; 0 disables them."""

    bind_address: str = "127.0.0.1"
    """Address of both endpoints (`0.0.0.0` inside a pod)."""

    peering: str | None = None
    """Kopf peering name (several replicas, the highest priority acts); None: standalone."""

    priority: int = 0
    """This replica's peering priority (cli draws a random one when none is given)."""

    peering_lifetime: int = 15
    """Seconds before a silent peer counts as gone: the failover time."""

    shard: str | None = None
    """This replica's shard member name (a Lease of that name in the operator's namespace);
    None: one process owns every VenueService."""

    shard_namespace: str | None = None
    """Where the shard members' Leases are (the operator's namespace)."""

    shard_lease: int = 15
    """Seconds a shard member's Lease lasts unrenewed: the takeover time."""

    verbose: bool = False
    """Kopf's debug logging."""

    prometheus_auth: PrometheusAuth | None = None
    """Credentials for --prometheus-url only (files of a Secret mounted in the pod)."""

    prometheus_limits: Limits = field(default_factory=Limits)
    """Bounds of every Prometheus query, per URL: total deadline, queries in flight, body."""

    tenancy: Tenancy = field(default_factory=Tenancy)
    """Tenant boundaries: allowed URLs, caps that clamp specs, namespaces it may act in."""

    storm: StormRule = field(default_factory=StormRule)
    """When many services breaching together hold their scale-ups and rollbacks."""

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def liveness_endpoint(self) -> str | None:
        if not self.liveness_port:
            return None
        return f"http://{self.bind_address}:{self.liveness_port}/healthz"
