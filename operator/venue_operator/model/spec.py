"""The VenueService spec: what a platform team asks for, with the runbook's defaults.

These pydantic models are the one source of truth for the CR's shape: the CRD in
`crds/` is generated from them (`venue-operator crd`), and a test fails when the
committed CRD differs. Cross-field rules live twice on purpose: as CEL on the
API server (bad specs never get in) and as validators here (the operator
double-checks what it reads).
"""

from __future__ import annotations

import weakref
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from venue_operator.model.durations import Duration
from venue_operator.model.fields import (
    CONFIGMAP_KEY,
    DNS_LABEL,
    HttpPath,
    HttpUrl,
    Model,
    ObjectName,
    Percent,
    cel,
)
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.rollout_guard import RolloutGuard

GROUP = "ops.tickettoken.io"
VERSION = "v1alpha1"
KIND = "VenueService"
PLURAL = "venueservices"
SINGULAR = "venueservice"
# `vs` is Istio's VirtualService; `venuesvc` collides with nothing well known.
SHORT_NAMES = ["venuesvc", "vsvc"]

RUNBOOK_PORT = 3002
DependencyName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
DependsOn = Annotated[list[DependencyName], Field(max_length=8)]


class ServiceEndpoint(Model):
    """Where the Venue Service answers: runbook "Service Overview" and "Health Checks"."""

    url: HttpUrl | None = Field(
        default=None,
        description=(
            "Base URL of the service. Default: http://<deployment>.<namespace>.svc:3002 "
            "(the runbook's port)."
        ),
    )
    health_path: HttpPath = Field(default="/health", description="Liveness endpoint.")
    full_health_path: HttpPath = Field(
        default="/health/full", description="Detailed health with checks.database and checks.redis."
    )

    @property
    def port(self) -> int:
        """The port the service answers on: the URL's (its scheme's by default), or the
        runbook's when no URL is given."""
        if self.url is None:
            return RUNBOOK_PORT
        try:
            parsed = urlsplit(self.url)
            return parsed.port or (443 if parsed.scheme == "https" else 80)
        except ValueError:  # a port out of range: the probe says so; no container has it
            return 0


class Probe(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.timeout) || !has(self.interval) || "
                "duration(self.timeout) < duration(self.interval)",
                "timeout must be shorter than interval",
            )
        )
    )

    interval: Duration = Field(
        default=timedelta(seconds=15), description="How often the service is evaluated."
    )
    timeout: Duration = Field(
        default=timedelta(seconds=2), description="Connect and read timeout of each health probe."
    )

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Probe:
        if self.timeout >= self.interval:
            raise ValueError("probe.timeout must be shorter than probe.interval")
        return self


# An override answers in the default query's unit, not in the one status shows: a share is
# a ratio from 0 to 1 that status multiplies by 100 into a percent (so `absent(...)`, which is
# 1, reads 100 %), a latency is seconds multiplied by 1000 into ms. A share outside 0-1 is not
# read (unknown, saying so): a query answering in percent would read 100 times too high.
RATIO = (
    "a ratio from 0 to 1, which status multiplies by 100 into a percent "
    "(0.05 is 5 %; absent(), which is 1, is 100 %)"
)
SHARE = RATIO + "; outside 0-1 the reading is unknown"
SHARE_OVERRIDES = frozenset({"error_rate", "rate_limited", "pool_utilisation"})


def _override(what: str, unit: str) -> Any:
    return Field(
        default=None, min_length=1, max_length=4096,
        description=f"PromQL for {what}, answering one series (or a scalar): {unit}.",
    )  # fmt: skip


class PromQLOverrides(Model):
    """Replace a default query. `$selector` expands to the service's label matchers."""

    error_rate: str | None = _override("the 5xx share of requests", SHARE)
    p99_latency: str | None = _override(
        "the p99 request latency", "seconds, which status multiplies by 1000 into ms"
    )
    pool_utilisation: str | None = _override("the DB pool's in use / size", SHARE)
    pool_pending: str | None = _override(
        "the requests waiting for a DB connection", "a count, shown as is"
    )
    memory_utilisation: str | None = _override("resident memory / its limit", RATIO)
    request_rate: str | None = _override("the request rate", "requests per second, shown as is")
    rate_limited: str | None = _override("the 429 share of requests", SHARE)


class PrometheusSource(Model):
    url: HttpUrl | None = Field(
        default=None,
        description="Prometheus base URL. Default: the operator's --prometheus-url.",
    )
    match_labels: dict[
        Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")],
        Annotated[str, Field(max_length=1024)],
    ] = Field(
        default_factory=dict,
        max_length=16,
        description=(
            "Labels selecting this service's series. Default: "
            "{namespace: <namespace>, service: <deployment>}."
        ),
    )
    rate_window: Duration = Field(
        default=timedelta(minutes=1), description="Range of rate() and histogram_quantile()."
    )
    queries: PromQLOverrides = Field(default_factory=PromQLOverrides)


class Threshold(Model):
    """A warning and a critical limit; a value strictly above a limit crosses it."""

    model_config = ConfigDict(
        json_schema_extra=cel(("self.warning < self.critical", "warning must be below critical"))
    )

    warning: float = Field(ge=0)
    critical: float = Field(ge=0)

    @model_validator(mode="after")
    def _warning_below_critical(self) -> Threshold:
        if self.warning >= self.critical:
            raise ValueError("warning must be below critical")
        return self


class PercentThreshold(Threshold):
    warning: Percent
    critical: Percent


class Thresholds(Model):
    """Runbook "Monitoring & Alerts" -> Key Metrics."""

    error_rate_percent: PercentThreshold = Field(
        default=PercentThreshold(warning=1, critical=5), description="5xx share of requests."
    )
    p99_latency_ms: Threshold = Field(
        default=Threshold(warning=500, critical=2000), description="P99 request latency."
    )
    pool_utilisation_percent: PercentThreshold = Field(
        default=PercentThreshold(warning=70, critical=90), description="DB pool in use / size."
    )
    pool_pending: Threshold = Field(
        default=Threshold(warning=0, critical=5),
        description=(
            "Requests waiting for a database connection (db_pool_pending): sustained, it is "
            'pool exhaustion (runbook "Database Connection Failures"; the numbers are ours).'
        ),
    )
    memory_percent: PercentThreshold = Field(
        default=PercentThreshold(warning=70, critical=85), description="Resident memory / limit."
    )
    rate_limited_percent: PercentThreshold = Field(
        default=PercentThreshold(warning=5, critical=25),
        description=(
            '429 share of requests (runbook "Rate Limit Errors"; the runbook gives no number, '
            "these are ours)."
        ),
    )


class Confirmation(Model):
    """Hysteresis: how many observations make a breach or a recovery real."""

    breaches: int = Field(default=3, ge=1, le=100, description="Consecutive breaching cycles.")
    recoveries: int = Field(default=3, ge=1, le=100, description="Consecutive passing cycles.")
    min_request_rate: float = Field(
        default=1.0,
        ge=0,
        description="Requests per second below which the error rate is not judged.",
    )


class SecretKeyRef(Model):
    name: ObjectName
    key: str = Field(min_length=1, max_length=253, pattern=CONFIGMAP_KEY)


class AlertmanagerSink(Model):
    """Alerts for the open incident, posted to Alertmanager's `/api/v2/alerts`
    (paging/alerts.py)."""

    url: HttpUrl | None = Field(
        default=None,
        description=(
            "Alertmanager base URL. Default: the operator's --alertmanager-url; any other "
            "must be allowed by the cluster admin (--allow-alertmanager-url)."
        ),
    )
    bearer_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a bearer token for the Alertmanager."
    )


class Notification(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.webhookSecretRef) || has(self.alertmanager)",
                "set webhookSecretRef, alertmanager or both",
            )
        )
    )

    webhook_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the webhook URL (never inline: URLs carry tokens).",
    )
    format: Literal["PagerDuty", "Slack"] = "Slack"
    alertmanager: AlertmanagerSink | None = Field(
        default=None,
        description="Alert through Alertmanager while an incident is open ({} for the "
        "operator's --alertmanager-url).",
    )

    @model_validator(mode="after")
    def _a_sink(self) -> Notification:
        if self.webhook_secret_ref is None and self.alertmanager is None:
            raise ValueError("set webhookSecretRef, alertmanager or both")
        return self


class DeploymentRef(Model):
    name: ObjectName
    container: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "The service's own container in the pod: only its restarts and readiness count "
            "against a version. Default: the container exposing the service URL's port."
        ),
    )


class VenueServiceSpec(Model):
    deployment: DeploymentRef = Field(description="The Deployment this resource watches and heals.")
    service: ServiceEndpoint = Field(default_factory=ServiceEndpoint)
    probe: Probe = Field(default_factory=Probe)
    prometheus: PrometheusSource = Field(default_factory=PrometheusSource)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    confirmation: Confirmation = Field(default_factory=Confirmation)
    remediation: RemediationPolicy = Field(default_factory=RemediationPolicy)
    rollout_guard: RolloutGuard = Field(default_factory=RolloutGuard)
    notification: Notification | None = None
    depends_on: DependsOn | None = Field(
        default=None,
        description=(
            "Shared dependencies of this service (e.g. the name of the database behind it). "
            "Services naming the same one are judged together by the operator's fleet storm "
            "guard: when many of them breach a check at once, their scale-ups and rollbacks "
            "are held as a shared cause (docs/fleet.md)."
        ),
    )  # fmt: skip


# Every part of a spec equal to a part of another spec held now, by (field, its JSON).
_PARTS: weakref.WeakValueDictionary[tuple[str, str], BaseModel] = weakref.WeakValueDictionary()


def with_shared_parts(spec: VenueServiceSpec) -> VenueServiceSpec:
    """`spec` with each part (probe, thresholds, remediation, ...) that equals one of another
    spec as that very object. The loops keep their validated specs, mostly the same defaults:
    8 of their ~10 KB each at 1,000 services. Safe to share: the models are frozen."""
    update = {}
    for name in VenueServiceSpec.model_fields:
        part = getattr(spec, name)
        if isinstance(part, BaseModel):
            held = _PARTS.setdefault((name, part.model_dump_json()), part)
            if held is not part:
                update[name] = held
    return spec.model_copy(update=update) if update else spec
