"""Living with the cluster's other controllers, on the real lab: a capacity breach raises the
HPA's minReplicas (the real HPA controller then scales the Deployment) or, when KEDA owns the
HPA, the ScaledObject's minReplicaCount (KEDA's real CRD, no KEDA controller); never the
Deployment's replicas. After recovery plus `restoreAfter` the capacity is given back, step by
step; a human's own value stops the restore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from tests import upstream_crds
from tests.harness import Venue, deployment, evaluations, get, history
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.model.keys import SCALED_FROM

KEDA_CRD = upstream_crds.DATA / "keda" / "keda.sh_scaledobjects.yaml"
# Quick steps up and back: 2 -> 3 -> 4 (the policy's bound), then 4 -> 3 -> 2.
CAPACITY = {
    "mode": "Auto",
    "rollback": {"recentRolloutWindow": "1s"},  # no rollout is "recent": a capacity problem
    "scale": {
        "minReplicas": 2,
        "maxReplicas": 4,
        "step": 1,
        "restoreAfter": "2s",
        "onPoolSaturation": True,
    },
    "cooldowns": {"scale": "1s"},
    "verifyWindow": "2s",
}


def hpa_manifest(name: str, owner: dict[str, Any] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return yaml.safe_dump({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    })  # fmt: skip


def scaled_object_manifest(name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"name": name}, "minReplicaCount": 2, "maxReplicaCount": 10,
                 "triggers": [{"type": "cpu", "metricType": "Utilization",
                               "metadata": {"value": "80"}}]},
    })  # fmt: skip


def replicas_managers(d: dict[str, Any]) -> set[str]:
    """Who owns Deployment.spec.replicas, per its managedFields."""
    return {
        entry["manager"]
        for entry in d["metadata"].get("managedFields", [])
        if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    }


def managers(obj: dict[str, Any]) -> set[str]:
    """Who wrote the object's spec or metadata: writes of the status subresource (the HPA
    controller's, whenever it first gets to it) are left out."""
    return {entry["manager"] for entry in obj["metadata"].get("managedFields", [])
            if entry.get("subresource") != "status"}  # fmt: skip


def wait_minimums(lab: Lab, ns: str, value: int, timeout: float) -> None:
    """The HPA's minReplicas and the ScaledObject's minReplicaCount both at `value`."""
    minimums = (("hpa", "hpa-venue", "minReplicas"),
                ("scaledobject", "keda-venue", "minReplicaCount"))  # fmt: skip
    wait_until(f"the HPA's and the ScaledObject's minimums at {value}",
               lambda: all(get(lab, kind, ns, name)["spec"][field] == value
                           for kind, name, field in minimums), timeout)  # fmt: skip


def test_hpa_scaled_object_and_replicas_are_raised_then_given_back(
    the_lab: Lab, operator: Any, make_venue: Callable[..., Venue]
) -> None:
    """One capacity incident for three services side by side (one lab scenario):
    (a) an HPA (min 2, max 10), (b) a ScaledObject owning an HPA, (c) no HPA, where a human
    scales the Deployment between two restore steps."""
    kubectl = the_lab.cluster.kubectl
    upstream_crds.install(the_lab, KEDA_CRD)
    # made without waiting for their scrapes (one discovery round for the three, below)
    hpa_venue = make_venue("hpa-venue", wait=False, remediation=CAPACITY)
    ns = hpa_venue.namespace
    kubectl("apply", "-n", ns, "-f", "-", input=hpa_manifest("hpa-venue"))
    keda_venue = make_venue("keda-venue", wait=False, remediation=CAPACITY)
    kubectl("apply", "-n", ns, "-f", "-", input=scaled_object_manifest("keda-venue"))
    so_uid = get(the_lab, "scaledobject", ns, "keda-venue")["metadata"]["uid"]
    owner = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "keda-venue",
             "uid": so_uid, "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    kubectl("apply", "-n", ns, "-f", "-", input=hpa_manifest("keda-venue", owner))
    keda_hpa_managers = managers(get(the_lab, "hpa", ns, "keda-venue"))
    # Slower restore steps for (c): time for the human between two of them.
    plain = make_venue("plain-venue", wait=False,
                       remediation={**CAPACITY, "verifyWindow": "6s"})  # fmt: skip
    venues = (hpa_venue, keda_venue, plain)
    for venue in venues:
        venue.wait_scraped()
        venue.wait_health("Healthy", "None")

    for venue in venues:
        venue.inject(pool_saturation=True)
    wait_minimums(the_lab, ns, 4, 120)  # raised to the policy's bound
    wait_until(
        "replicas scaled up to 4",
        lambda: deployment(the_lab, ns, "plain-venue")["spec"]["replicas"] == 4,
        60,
    )
    # The real HPA controller, not the operator, scales the HPA's Deployment.
    wait_until(
        "the HPA controller scales the Deployment to 4",
        lambda: deployment(the_lab, ns, "hpa-venue")["spec"]["replicas"] == 4,
        30,
    )
    assert get(the_lab, "hpa", ns, "hpa-venue")["metadata"]["annotations"][SCALED_FROM] == "2"
    assert get(the_lab, "scaledobject", ns, "keda-venue")["metadata"]["annotations"][
        SCALED_FROM] == "2"  # fmt: skip
    assert [r["inputs"]["toReplicas"] for r in history(hpa_venue, "ScaleUp")] == ["3", "4"]
    assert {r["inputs"]["scaleKind"] for r in history(keda_venue, "ScaleUp")} == {"ScaledObject"}
    assert hpa_venue.status()["capacity"]["original"] == 2

    for venue in venues:
        venue.heal()
    plain.wait_event("ScaledBack", timeout=60)
    assert deployment(the_lab, ns, "plain-venue")["spec"]["replicas"] == 3
    kubectl("scale", "deployment/plain-venue", "-n", ns, "--replicas=5")  # a human
    wait_minimums(the_lab, ns, 2, 90)  # given back
    for venue in (hpa_venue, keda_venue):
        backs = history(venue, "ScaleBack")
        assert [r["inputs"]["toReplicas"] for r in backs] == ["3", "2"], backs
        assert "capacity" not in venue.status()
        assert venue.events("ScaledBack")
    for kind, name in (("hpa", "hpa-venue"), ("scaledobject", "keda-venue")):
        assert SCALED_FROM not in (get(the_lab, kind, ns, name)["metadata"].get("annotations")
                                   or {})  # fmt: skip
    # Only the HPA / the ScaledObject was written: never Deployment.spec.replicas, and the
    # KEDA-owned HPA not at all (KEDA would reset it).
    for name in ("hpa-venue", "keda-venue"):
        owners = replicas_managers(deployment(the_lab, ns, name))
        assert owners <= {"kubectl-client-side-apply", "kube-controller-manager"}, owners
    assert managers(get(the_lab, "hpa", ns, "keda-venue")) == keda_hpa_managers
    assert get(the_lab, "hpa", ns, "keda-venue")["spec"]["minReplicas"] == 2

    # (c) the human's 5 stops the restore: said once, the loan gone, nothing written over it.
    event = plain.wait_event("RestoreAbandoned", timeout=30)
    assert "is 5, not the 3 the operator wrote" in event["message"]
    seen = evaluations(operator, plain)
    wait_until("5 more evaluations", lambda: evaluations(operator, plain) >= seen + 5, 30)
    assert deployment(the_lab, ns, "plain-venue")["spec"]["replicas"] == 5
    assert len(history(plain, "ScaleBack")) == 1
    assert "capacity" not in plain.status()
