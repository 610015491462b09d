"""Event reasons: every Event the operator posts has one of these (short CamelCase)."""

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
