"""GitOps on the real lab (#16 acceptance d): a Deployment applied by a Flux Kustomization
(the real upstream CRD, tests/data/fluxcd, without its controller; we play Flux by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from tests.harness import (
    BAD_IMAGE,
    FAST,
    Venue,
    evaluations,
    fresh_namespace,
    get,
    history,
    set_image,
)
from tests.upstream_crds import DATA, install
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.model import keys

KUSTOMIZATION_CRD = DATA / "fluxcd" / "kustomize.toolkit.fluxcd.io_kustomizations.yaml"


def kustomization(lab: Lab, namespace: str) -> dict[str, Any]:
    return get(lab, "kustomization.kustomize.toolkit.fluxcd.io", namespace, "apps")


def flux_owns(lab: Lab, venue: Venue, flux_ns: str) -> None:
    """A Kustomization in another namespace that lists the Deployment in its inventory (what
    kustomize-controller writes), and the labels it puts on what it applies."""
    kubectl = lab.cluster.kubectl
    install(lab, KUSTOMIZATION_CRD)
    body = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": flux_ns},
            "spec": {"interval": "10m", "path": "./apps", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "apps"}}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(body))
    entry = {"id": f"{venue.namespace}_{venue.name}_apps_Deployment", "v": "v1"}
    kubectl("patch", "kustomization.kustomize.toolkit.fluxcd.io", "apps", "-n", flux_ns,
            "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"inventory": {"entries": [entry]}}}))  # fmt: skip
    kubectl("label", "deployment", venue.name, "-n", venue.namespace,
            f"{keys.FLUX_KUSTOMIZATION_NAME}=apps",
            f"{keys.FLUX_KUSTOMIZATION_NAMESPACE}={flux_ns}")  # fmt: skip


def test_flux_rollback_is_named_suspended_not_looped_and_resumed(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    # A 1 s rollback cooldown: only the loop guard can stop a second rollback here.
    venue = following_venue(
        **FAST, remediation={"gitops": {"suspend": True}, "cooldowns": {"rollback": "1s"}}
    )
    with fresh_namespace(the_lab, "flux") as flux_ns:
        flux_owns(the_lab, venue, flux_ns)
        managed = {"kind": "Kustomization", "name": "apps", "namespace": flux_ns}
        venue.wait_status(
            "managed by the Kustomization",
            lambda s: (s.get("gitops") or {}).get("managedBy") == managed,
        )

        set_image(the_lab, venue.namespace, BAD_IMAGE)
        rolled_back = venue.wait_event("RolledBack", timeout=60)
        assert f"Kustomization {flux_ns}/apps suspended" in rolled_back["message"]
        assert f"venue-operator resume {venue.name} -n {venue.namespace}" in rolled_back["message"]
        ks = kustomization(the_lab, flux_ns)
        assert ks["spec"]["suspend"] is True
        record = json.loads(ks["metadata"]["annotations"][keys.GITOPS_SUSPENDED])
        assert record["change"] == "spec.suspend: unset -> true" and record["previous"] is None
        suspension = venue.status()["gitops"]["suspension"]
        assert suspension["object"] == managed
        assert suspension["correlationId"] == history(venue, "RollBack")[0]["correlationId"]
        assert venue.events("GitOpsSuspended")
        venue.wait_health("Healthy", "None")

        # Flux (were it not suspended) or a human re-applies the bad template from Git.
        set_image(the_lab, venue.namespace, BAD_IMAGE)
        reapplied = venue.wait_event("ReappliedByGitOps", timeout=60)
        assert f"Kustomization {flux_ns}/apps re-applied pod template" in reapplied["message"]
        seen = evaluations(operator, venue)
        wait_until("5 more evaluations", lambda: evaluations(operator, venue) >= seen + 5, 30)
        status = venue.status()
        assert len(history(venue, "RollBack")) == 1  # no second rollback...
        assert len(history(venue, "Escalate")) == 1  # ...and one escalation
        assert sum(e.get("count", 1) for e in venue.events("ReappliedByGitOps")) == 1
        bad = history(venue, "RollBack")[0]["inputs"]["fromTemplate"]
        assert bad in status["rolledBackTemplates"] and bad not in status["healthyTemplates"]

        env = {**os.environ, "KUBECONFIG": str(the_lab.cluster.kubeconfig)}
        done = subprocess.run(
            [sys.executable, "-m", "venue_operator.cli", "resume", venue.name, "-n",
             venue.namespace], env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        ks = kustomization(the_lab, flux_ns)
        assert "suspend" not in ks["spec"]
        assert keys.GITOPS_SUSPENDED not in (ks["metadata"].get("annotations") or {})
        venue.wait_status("suspension cleared",
                          lambda s: not (s.get("gitops") or {}).get("suspension"))  # fmt: skip
        assert venue.events("GitOpsResumed")
