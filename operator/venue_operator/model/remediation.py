"""What the operator may do for a VenueService (`spec.remediation`): its mode, each action's
bounds and cooldowns, the budget; the runbook's defaults."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from venue_operator.model.durations import Duration, DurationOrZero
from venue_operator.model.fields import (
    CONFIGMAP_KEY,
    Model,
    ObjectName,
    cel,
)


class Mode(StrEnum):
    AUTO = "Auto"
    DRY_RUN = "DryRun"
    OFF = "Off"


class RollbackPolicy(Model):
    enabled: bool = True
    recent_rollout_window: Duration = Field(
        default=timedelta(minutes=30),
        description="A rollout started this recently is a rollback candidate.",
    )
    bake_time: Duration = Field(
        default=timedelta(minutes=5),
        description="A revision becomes a known-good rollback target after this long healthy.",
    )


class ScalePolicy(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.minReplicas) || !has(self.maxReplicas) || "
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must not exceed maxReplicas",
            )
        )
    )

    enabled: bool = True
    min_replicas: int = Field(default=2, ge=1, le=1000)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    step: int = Field(default=1, ge=1, le=100)
    on_pool_saturation: bool = Field(
        default=False,
        description=(
            "Also scale up when the database connection pool is saturated. Off by default: "
            "the runbook files pool exhaustion under Database Connection Failures (PgBouncer, "
            "connection limits, leaks), and more pods add connections to the same database."
        ),
    )
    restore_after: DurationOrZero = Field(
        default=timedelta(minutes=30),
        description=(
            "Give capacity added in an incident back once the service has been healthy this "
            "long after it (step by step, each step verified); 0s: never."
        ),
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> ScalePolicy:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class MigrationPolicy(Model):
    enabled: bool = True
    cron_job_name: ObjectName = Field(
        default="venue-migrate", description="CronJob whose template the migration Job copies."
    )
    timeout: Duration = Field(default=timedelta(minutes=10))


class CircuitBreakerPolicy(Model):
    enabled: bool = True
    config_map_name: ObjectName = Field(default="venue-service-circuit-breaker")
    key: str = Field(default="open", min_length=1, max_length=253, pattern=CONFIGMAP_KEY)
    echo_window: Duration = Field(
        default=timedelta(minutes=2),
        description=(
            "After the circuit closes, how long errors and latency are taken as the echo of "
            "the dependency outage (rate windows lag it) before the usual rules apply again."
        ),
    )


class Cooldowns(Model):
    rollback: Duration = Field(default=timedelta(minutes=10))
    scale: Duration = Field(default=timedelta(minutes=5))
    migration: Duration = Field(default=timedelta(minutes=15))
    circuit_breaker: Duration = Field(default=timedelta(minutes=1))


class GitOpsPolicy(Model):
    suspend: bool = Field(
        default=False,
        description=(
            "After rolling back a Deployment applied by Flux or Argo CD, suspend the "
            "Kustomization/HelmRelease (spec.suspend) or turn off the Application's automated "
            "sync, so that it does not re-apply the bad revision; `venue-operator resume` undoes "
            "it. Only an object in this namespace, or one whose own status lists the Deployment."
        ),
    )


class RemediationPolicy(Model):
    mode: Mode = Field(
        default=Mode.AUTO, description="Auto acts; DryRun records; Off only watches."
    )
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    scale: ScalePolicy = Field(default_factory=ScalePolicy)
    migration: MigrationPolicy = Field(default_factory=MigrationPolicy)
    circuit_breaker: CircuitBreakerPolicy = Field(default_factory=CircuitBreakerPolicy)
    cooldowns: Cooldowns = Field(default_factory=Cooldowns)
    gitops: GitOpsPolicy = Field(default_factory=GitOpsPolicy)
    max_actions_per_hour: int = Field(default=6, ge=0, le=100)
    verify_window: Duration = Field(
        default=timedelta(minutes=5), description="After acting, how long to wait for recovery."
    )
