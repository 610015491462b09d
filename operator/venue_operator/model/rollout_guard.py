"""The rollout guard's part of the spec (`rolloutGuard`): how often and how strictly a
rollout's new pods are compared with its old ones, where each pod is read, per tenant, and
the old version's baseline for rollouts that leave no old pods (guard/)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from venue_operator.model.durations import Duration
from venue_operator.model.fields import Model, PlainPath, cel

# The runbook's port, as spec.RUNBOOK_PORT (which imports this module; test_model checks both).
POD_PORT = 3002


class PodEndpoint(Model):
    """Where the rollout guard reads each pod directly: `<scheme>://<podIP>:<port><path>`.

    The address is the pod's own IP from its status (never a name from the spec); a
    hostNetwork pod, whose IP is its node's, is never read on it. https encrypts but cannot
    verify the pod: a certificate names a service, not a pod IP, so it is not checked; the
    guard sends no credentials, and it trusts these answers as much as plain http ones.
    """

    port: int = Field(
        default=POD_PORT, ge=1, le=65535, description="The pod's metrics and health port."
    )
    scheme: Literal["http", "https"] = Field(
        default="http",
        description="https: encrypted, the certificate not verified (a pod IP has no name).",
    )
    metrics_path: PlainPath = Field(
        default="/metrics", description="Prometheus text exposition of the pod's own counters."
    )
    health_path: PlainPath = Field(
        default="/health/full", description="The pod's detailed health (checks.database, ...)."
    )


class TenantComparison(Model):
    """New versus old per tenant too (guard/judge.py), so that a version failing one small
    tenant is caught though the overall ratio stays under the limit.

    The label's values come from the service's own metrics: untrusted, so at most
    `maxTenants` are followed (the busiest at each read), and a tenant is judged only over
    `minRequests` of its own new requests, at the significance divided by the number of
    tenants judged (Bonferroni: more tenants, more chances of a false pause).
    """

    label: str = Field(
        default="tenant",
        max_length=128,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="The label of http_requests_total that names the tenant.",
    )
    max_tenants: int = Field(
        default=20, ge=0, le=100, description="Tenants followed per version; 0: overall only."
    )
    min_requests: int = Field(
        default=20, ge=10, le=1_000_000, description="A tenant's new requests before judging."
    )


class RolloutGuard(Model):
    """Compare a rollout's new pods with its old ones while it rolls out (guard/judge.py).

    Its limits are `thresholds` (the runbook's critical error rate and P99): the new version
    must cross them and be significantly worse than the old one.
    """

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.interval) || duration(self.interval) >= duration('500ms')",
                "interval must be at least 500ms",
            ),
            (
                "!has(self.baselineWindow) || (duration(self.baselineWindow) >= duration('30s')"
                " && duration(self.baselineWindow) <= duration('1h'))",
                "baselineWindow must be from 30s to 1h",
            ),
        )
    )

    enabled: bool = True
    interval: Duration = Field(
        default=timedelta(seconds=2),
        description="How often each pod's /metrics and /health/full are read during a rollout.",
    )
    significance: float = Field(
        default=0.001,
        # not below 1e-4: kustomize writes smaller bounds as 1e-05, a string to YAML 1.1
        ge=0.0001,
        le=0.1,
        description="One-sided Fisher test on 5xx counts: the new version is worse below this p.",
    )
    min_requests: int = Field(
        default=50, ge=10, le=1_000_000, description="New-version requests before judging."
    )
    confirmations: int = Field(
        default=2, ge=1, le=10, description="Consecutive reads that must find it worse."
    )
    warm_up: Duration = Field(
        default=timedelta(seconds=10),
        description="Each new pod's first seconds, left out of its latency (not its errors).",
    )
    pods: PodEndpoint = Field(
        default_factory=PodEndpoint,
        description="Where each pod is read directly; unreachable there, from Prometheus.",
    )
    tenants: TenantComparison = Field(
        default_factory=TenantComparison,
        description="The new version compared with the old per tenant as well as overall.",
    )
    baseline_window: Duration = Field(
        default=timedelta(minutes=5),
        description=(
            "With no old pods left to compare (maxSurge 100%, Recreate), the new version is "
            "compared with the old one's requests over this window before the template "
            "changed, from Prometheus."
        ),
    )

    @model_validator(mode="after")
    def _interval_at_least_half_a_second(self) -> RolloutGuard:
        if self.interval < timedelta(milliseconds=500):
            raise ValueError("rolloutGuard.interval must be at least 500ms")
        if not timedelta(seconds=30) <= self.baseline_window <= timedelta(hours=1):
            raise ValueError("rolloutGuard.baselineWindow must be from 30s to 1h")
        return self
