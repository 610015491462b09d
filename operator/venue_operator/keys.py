"""Every label and annotation key the operator reads or writes, defined once.

Kubernetes' own keys (the Deployment controller's bookkeeping) and ours
(`ops.tickettoken.io/...`), so that a reader finds in one place what the operator
leaves on other people's objects.
"""

from __future__ import annotations

# Kubernetes' Deployment controller.
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CRONJOB_INSTANTIATE = "cronjob.kubernetes.io/instantiate"

# Set by humans on a VenueService: stop every action.
PAUSED = "ops.tickettoken.io/paused"
# Set by release tooling on a pod template: the revision ships this schema migration...
MIGRATION = "ops.tickettoken.io/migration"
# ...which older revisions can run against ("true"), so a rollback may cross it.
BACKWARD_COMPATIBLE = "ops.tickettoken.io/migration-backward-compatible"

# Written by the operator.
REMEDIATION_ID = "ops.tickettoken.io/remediation-id"  # the action's correlation id
# On a Deployment we rolled back: the pod-template-hash we made current. While the
# current template has this hash, it is our rollback, not somebody's new rollout.
ROLLED_BACK_TO = "ops.tickettoken.io/rolled-back-to"
CIRCUIT_SET_BY = "ops.tickettoken.io/circuit-set-by"
CIRCUIT_SET_AT = "ops.tickettoken.io/circuit-set-at"
CIRCUIT_REASON = "ops.tickettoken.io/circuit-reason"
# On a Deployment the rollout guard paused: the pausing action's correlation id. Only a
# rollout paused by us is resumed by our rollback; a human's pause is left alone.
PAUSED_BY_GUARD = "ops.tickettoken.io/paused-by-guard"
