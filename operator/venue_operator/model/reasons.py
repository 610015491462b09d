"""Event reasons (every Event the operator posts has one of these, short CamelCase), and the
runbook's sections by title with the one each check belongs to."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # What the checks did.
    THRESHOLD_BREACHED = "ThresholdBreached"
    RECOVERED = "Recovered"
    SEVERITY_CHANGED = "SeverityChanged"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    WAITING_FOR_DEPLOYMENT = "WaitingForDeployment"
    # What the operator did, or would have done.
    ROLLED_BACK = "RolledBack"
    ROLLOUT_PAUSED = "RolloutPaused"  # the rollout guard stopped a bad version mid-rollout
    SCALED_UP = "ScaledUp"
    SCALED_BACK = "ScaledBack"
    RESTORE_ABANDONED = "RestoreAbandoned"
    MIGRATION_STARTED = "MigrationStarted"
    MIGRATION_SUCCEEDED = "MigrationSucceeded"
    MIGRATION_FAILED = "MigrationFailed"
    CIRCUIT_OPENED = "CircuitOpened"
    CIRCUIT_CLOSED = "CircuitClosed"
    RATE_LIMIT_DIAGNOSED = "RateLimitDiagnosed"
    DRY_RUN = "DryRun"
    # A GitOps controller (Argo CD, Flux) applies the Deployment (decide/gitops.py).
    GITOPS_SUSPENDED = "GitOpsSuspended"
    GITOPS_SUSPEND_FAILED = "GitOpsSuspendFailed"
    GITOPS_RESUMED = "GitOpsResumed"
    REAPPLIED_BY_GITOPS = "ReappliedByGitOps"
    TEMPLATE_REAPPLIED = "TemplateReapplied"
    # Many services breaching together (fleet/storm_watch.py): on the operator's own Pod.
    FLEET_STORM = "FleetStorm"
    FLEET_STORM_OVER = "FleetStormOver"
    # Why it did not act, and when it handed over to humans.
    REMEDIATION_SUPPRESSED = "RemediationSuppressed"
    REMEDIATION_HELD = "RemediationHeld"
    REMEDIATION_FAILED = "RemediationFailed"
    ESCALATED = "Escalated"
    # What it cannot do.
    GUARD_SOURCE_CHANGED = "GuardSourceChanged"  # rollout guard: pods read directly or not
    INVALID_SPEC = "InvalidSpec"
    EVALUATION_FAILED = "EvaluationFailed"
    DUPLICATE_TARGET = "DuplicateTarget"
    PERMISSION_MISSING = "PermissionMissing"
    # What the cluster admin's tenant boundaries changed or refused (tenancy/policy.py).
    SPEC_CLAMPED = "SpecClamped"
    TARGET_REFUSED = "TargetRefused"
    OBSERVE_ONLY = "ObserveOnly"
    # What the notification sinks could not deliver (paging/alertmanager.py).
    ALERT_NOT_DELIVERED = "AlertNotDelivered"
    PAGING_FAILED = "PagingFailed"


# Runbook sections, as titled in the runbook, and the one each check belongs to (in the
# order the checks are shown): a check is stored without it while ok, read back with it.
HEALTH_CHECKS = "Health Checks"
NOT_STARTING = "Service Not Starting"
HIGH_LATENCY = "High Latency"
RATE_LIMITS = "Rate Limit Errors"
DB_FAILURES = "Database Connection Failures"
DB_OPERATIONS = "Database Operations"
MONITORING = "Monitoring & Alerts"
CHECK_SECTIONS = {
    "health": HEALTH_CHECKS,
    "database": DB_FAILURES,
    "redis": NOT_STARTING,
    "migrations": DB_OPERATIONS,
    "pods": NOT_STARTING,
    "error_rate": MONITORING,
    "p99_latency": HIGH_LATENCY,
    "pool_utilisation": DB_FAILURES,
    "pool_pending": DB_FAILURES,
    "memory": MONITORING,
    "rate_limited": RATE_LIMITS,
}
