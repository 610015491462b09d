"""GitOps awareness: which Flux or Argo CD object re-applies a Deployment from Git, whether
the operator may suspend it, and what a human must do after a rollback. Pure.

A Deployment's labels and annotations are written by whoever may edit the Deployment, so
they are a claim, not a fact: parsed strictly (garbage is "not managed"), shown and named
in Events, but the operator writes a GitOps object only when it lives in the VenueService's
namespace or its own status (written by its controller) lists the Deployment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from venue_operator.model import keys
from venue_operator.model.fields import DNS_LABEL, DNS_SUBDOMAIN
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.status import (
    GitOpsObject,
    GitOpsStatus,
    GitOpsSuspension,
    VenueServiceStatus,
)

KUSTOMIZATION = "Kustomization"
HELMRELEASE = "HelmRelease"
APPLICATION = "Application"
# kind -> (group, version, plural): the versions the vendored upstream CRDs serve.
API = {
    KUSTOMIZATION: ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    HELMRELEASE: ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    APPLICATION: ("argoproj.io", "v1alpha1", "applications"),
}
# Where Argo CD keeps Applications unless the app name says `<namespace>_<name>` (Argo CD's
# "applications in any namespace" form of the instance label and tracking id).
ARGOCD_NAMESPACE = "argocd"


def _valid(value: object, pattern: str, limit: int) -> str | None:
    ok = isinstance(value, str) and len(value) <= limit and re.fullmatch(pattern, value)
    return value if ok and isinstance(value, str) else None


def _name(value: object) -> str | None:
    return _valid(value, DNS_SUBDOMAIN, 253)


def _namespace(value: object) -> str | None:
    return _valid(value, DNS_LABEL, 63)


def _flux(labels: Mapping[str, Any], kind: str, name_key: str, ns_key: str) -> GitOpsRef | None:
    name, namespace = _name(labels.get(name_key)), _namespace(labels.get(ns_key))
    return GitOpsRef(kind, name, namespace) if name and namespace else None


def _argo_app(app: object) -> GitOpsRef | None:
    """`name` (in Argo CD's namespace) or `namespace_name`."""
    if not isinstance(app, str):
        return None
    namespace, _, name = app.rpartition("_") if "_" in app else (ARGOCD_NAMESPACE, "", app)
    name_ok, namespace_ok = _name(name), _namespace(namespace)
    return GitOpsRef(APPLICATION, name_ok, namespace_ok) if name_ok and namespace_ok else None


def _tracking_id(value: object) -> GitOpsRef | None:
    """`<app>:<group>/<kind>:<namespace>/<name>` (Argo CD's annotation tracking)."""
    if not isinstance(value, str) or len(value) > 1024:
        return None
    parts = value.split(":")
    if len(parts) != 3 or "/" not in parts[1] or "/" not in parts[2]:
        return None
    return _argo_app(parts[0])


def owner(labels: object, annotations: object) -> GitOpsRef | None:
    """The GitOps object a Deployment's metadata names, or None (also for garbage values).
    Flux's labels first (the direct applier of what it renders), then Argo CD's."""
    labels = labels if isinstance(labels, Mapping) else {}
    annotations = annotations if isinstance(annotations, Mapping) else {}
    helm = (keys.FLUX_HELMRELEASE_NAME, keys.FLUX_HELMRELEASE_NAMESPACE)
    kustomize = (keys.FLUX_KUSTOMIZATION_NAME, keys.FLUX_KUSTOMIZATION_NAMESPACE)
    return (
        _flux(labels, HELMRELEASE, *helm)
        or _flux(labels, KUSTOMIZATION, *kustomize)
        or _tracking_id(annotations.get(keys.ARGOCD_TRACKING_ID))
        or _argo_app(labels.get(keys.ARGOCD_INSTANCE))
    )


def _items(value: object) -> list[Mapping[str, Any]]:
    return [i for i in value if isinstance(i, Mapping)] if isinstance(value, list) else []


def lists_deployment(obj: Mapping[str, Any], kind: str, namespace: str, deployment: str) -> bool:
    """The object's own status (written by its controller) lists the Deployment: Flux's
    `status.inventory.entries[].id`, Argo CD's `status.resources[]`."""
    status = obj.get("status")
    status = status if isinstance(status, Mapping) else {}
    if kind == APPLICATION:
        wanted = {"group": "apps", "kind": "Deployment", "namespace": namespace,
                  "name": deployment}  # fmt: skip
        return any(all(r.get(k) == v for k, v in wanted.items())
                   for r in _items(status.get("resources")))  # fmt: skip
    inventory = status.get("inventory")
    entries = _items(inventory.get("entries")) if isinstance(inventory, Mapping) else []
    return any(e.get("id") == f"{namespace}_{deployment}_apps_Deployment" for e in entries)


def refusal(ref: GitOpsRef, obj: Mapping[str, Any], namespace: str, deployment: str) -> str | None:
    """Why the operator may not suspend `obj` for this VenueService, or None if it may."""
    if ref.namespace == namespace or lists_deployment(obj, ref.kind, namespace, deployment):
        return None
    where = "status.resources" if ref.kind == APPLICATION else "status.inventory"
    return (f"{ref} is in another namespace and its {where} does not list Deployment "
            f"{namespace}/{deployment}: not suspended (the Deployment's labels alone are "
            "no proof)")  # fmt: skip


def _suspend_command(ref: GitOpsRef) -> str:
    if ref.kind == APPLICATION:
        return f"argocd app set {ref.namespace}/{ref.name} --sync-policy none"
    return f"flux suspend {ref.kind.lower()} {ref.name} -n {ref.namespace}"


def advice(
    ref: GitOpsRef, suspension: GitOpsSuspension | None, resume: str, found: str | None = None
) -> str:
    """What a human must do after a rollback, for the RolledBack Event and the page.
    `found`: what the suspend act found instead of a sync to suspend (suspended by a human,
    no automated sync): said as it is, never "suspend it"."""
    if suspension is not None:
        return (f"GitOps: {ref} suspended by the operator ({suspension.change}); revert the "
                f"bad commit in Git, then `{resume}`")  # fmt: skip
    if found is not None:
        return f"GitOps: {found}; revert the bad commit in Git before its next sync"
    return (f"GitOps: {ref} will re-apply the rolled-back revision at its next sync: revert "
            f"the bad commit in Git, or suspend it (`{_suspend_command(ref)}`)")  # fmt: skip


def as_object(ref: GitOpsRef) -> GitOpsObject:
    return GitOpsObject.model_validate({"kind": ref.kind, "name": ref.name,
                                        "namespace": ref.namespace})  # fmt: skip


def shown(previous: GitOpsStatus | None, ref: GitOpsRef | None) -> GitOpsStatus | None:
    """status.gitops after this cycle: who manages the Deployment now; a suspension stays
    until it is resumed, even if the labels went away."""
    managed = as_object(ref) if ref is not None else None
    updated = (previous or GitOpsStatus()).model_copy(update={"managed_by": managed})
    return updated if updated != GitOpsStatus() else None


def suspended(
    status: VenueServiceStatus, suspension: GitOpsSuspension | None, error: str | None
) -> VenueServiceStatus:
    """Record a suspension made (or already there), or why none was made."""
    gitops = status.gitops or GitOpsStatus()
    update: dict[str, object] = {"suspend_error": error}
    if suspension is not None:
        update["suspension"] = suspension
    return status.model_copy(update={"gitops": gitops.model_copy(update=update)})


def acknowledge_resume(
    status: VenueServiceStatus, annotations: Mapping[str, str] | None
) -> VenueServiceStatus | None:
    """Clear the suspension that `venue-operator resume` says it undid (by correlation id),
    or None when there is nothing to clear."""
    gitops = status.gitops
    said = (annotations or {}).get(keys.GITOPS_RESUMED)
    if gitops is None or gitops.suspension is None or said != gitops.suspension.correlation_id:
        return None
    return status.model_copy(update={"gitops": gitops.model_copy(update={"suspension": None})})


def resumed_message(suspension: GitOpsSuspension, at: datetime) -> str:
    obj = suspension.object
    # "resumed" would not be true when the object was deleted meanwhile (resume then has
    # nothing to undo): what holds in both cases is that our suspension is over
    return (f"{obj.kind} {obj.namespace}/{obj.name} no longer suspended by the operator at "
            f"{at:%H:%M:%S} (`venue-operator resume`; suspended after rollback "
            f"{suspension.correlation_id}: {suspension.change})")  # fmt: skip
