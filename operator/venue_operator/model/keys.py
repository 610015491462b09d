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
# On a Deployment, HPA or ScaledObject we scaled up: the value of the field before our
# first scale-up (replicas, minReplicas, minReplicaCount), removed when it is given back.
SCALED_FROM = "ops.tickettoken.io/scaled-from"

# GitOps controllers' marks on what they apply (read only: untrusted, any namespace user can
# set them on a Deployment; decide/gitops.py validates them).
ARGOCD_INSTANCE = "argocd.argoproj.io/instance"
ARGOCD_TRACKING_ID = "argocd.argoproj.io/tracking-id"
FLUX_KUSTOMIZATION_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_KUSTOMIZATION_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HELMRELEASE_NAME = "helm.toolkit.fluxcd.io/name"
FLUX_HELMRELEASE_NAMESPACE = "helm.toolkit.fluxcd.io/namespace"
# Written by the operator on a Flux Kustomization/HelmRelease or an Argo CD Application it
# suspended: what it changed and the value before (JSON), so that it can be undone.
GITOPS_SUSPENDED = "ops.tickettoken.io/gitops-suspended"
# Set on a VenueService by `venue-operator resume`: the correlation id of the suspension it
# undid, so that the operator (the one status writer) clears it from status.
GITOPS_RESUMED = "ops.tickettoken.io/gitops-resumed"
# On a Deployment the rollout guard paused: the pausing action's correlation id. Only a
# rollout paused by us is resumed by our rollback; a human's pause is left alone.
PAUSED_BY_GUARD = "ops.tickettoken.io/paused-by-guard"
