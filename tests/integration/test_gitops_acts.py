"""The GitOps act against the real API server and the real upstream CRDs (tests/data: Argo CD
Application, Flux HelmRelease; no controllers): the patches are accepted by their schemas,
suspend/resume round-trip exactly, and the trust rule refuses an object in another namespace
that does not list the Deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes.aio import client

from tests.harness import fresh_namespace, get
from tests.upstream_crds import DATA, install
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.act import ActError, gitops_sync
from venue_operator.model import keys
from venue_operator.model.observations import GitOpsRef

CRDS = (
    DATA / "argo-cd" / "application-crd.yaml",
    DATA / "fluxcd" / "helm.toolkit.fluxcd.io_helmreleases.yaml",
    DATA / "fluxcd" / "kustomize.toolkit.fluxcd.io_kustomizations.yaml",  # for can-i only
)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AUTOMATED = {"prune": True, "selfHeal": True}


@pytest.fixture
def gitops_ns(the_lab: Lab) -> Iterator[str]:
    for path in CRDS:
        install(the_lab, path)
    with fresh_namespace(the_lab, "gitops") as ns:
        yield ns


def application(ns: str, resources: list[dict[str, str]]) -> str:
    return json.dumps({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "venue", "namespace": ns},
        "spec": {"project": "default",
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                 "source": {"repoURL": "https://git.example/venue.git", "path": "deploy"},
                 "syncPolicy": {"automated": AUTOMATED}},
        "status": {"resources": resources},
    })  # fmt: skip


async def test_argo_cd_automated_sync_off_and_back_on_only_when_the_app_lists_it(
    the_lab: Lab, gitops_ns: str, api: client.ApiClient
) -> None:
    kubectl, ref = the_lab.cluster.kubectl, GitOpsRef("Application", "venue", gitops_ns)
    kubectl("apply", "-f", "-", input=application(gitops_ns, []))
    with pytest.raises(ActError, match="does not list Deployment shop/venue-service"):
        await gitops_sync.suspend(api, ref, "shop", "venue-service", "venue-operator", "r-1", NOW)
    assert get(the_lab, "application", gitops_ns, "venue")["spec"]["syncPolicy"]["automated"]

    listed = [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop",
               "name": "venue-service"}]  # fmt: skip
    kubectl("apply", "-f", "-", input=application(gitops_ns, listed))
    result, suspension = await gitops_sync.suspend(api, ref, "shop", "venue-service",
                                              "venue-operator", "r-1", NOW)  # fmt: skip
    assert result.changed and suspension is not None
    assert suspension.change == "spec.syncPolicy.automated removed"
    app = get(the_lab, "application", gitops_ns, "venue")
    assert "automated" not in app["spec"].get("syncPolicy", {})
    record = json.loads(app["metadata"]["annotations"][keys.GITOPS_SUSPENDED])
    assert record["correlationId"] == "r-1" and json.loads(record["previous"]) == AUTOMATED
    again, same = await gitops_sync.suspend(
        api, ref, "shop", "venue-service", "venue-operator", "r-2", NOW
    )
    assert not again.changed and same == suspension  # a rerun finds it done

    assert (await gitops_sync.resume(api, ref)).changed
    app = get(the_lab, "application", gitops_ns, "venue")
    assert app["spec"]["syncPolicy"]["automated"] == AUTOMATED
    assert keys.GITOPS_SUSPENDED not in (app["metadata"].get("annotations") or {})
    assert not (await gitops_sync.resume(api, ref)).changed


async def test_a_helmrelease_in_the_services_namespace_is_suspended_and_resumed(
    the_lab: Lab, gitops_ns: str, api: client.ApiClient
) -> None:
    release = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": "venue", "namespace": gitops_ns},
               "spec": {"interval": "10m", "chartRef": {"kind": "OCIRepository",
                                                        "name": "venue"}}}  # fmt: skip
    the_lab.cluster.kubectl("apply", "-f", "-", input=json.dumps(release))
    ref = GitOpsRef("HelmRelease", "venue", gitops_ns)
    result, _ = await gitops_sync.suspend(api, ref, gitops_ns, "venue-service", "venue-operator",
                                     "r-1", NOW)  # fmt: skip
    assert result.changed
    assert get(the_lab, "helmrelease", gitops_ns, "venue")["spec"]["suspend"] is True
    assert (await gitops_sync.resume(api, ref)).changed
    assert "suspend" not in get(the_lab, "helmrelease", gitops_ns, "venue")["spec"]

    # Deleted since (by a human, or pruned from Git): nothing to undo, the CLI clears status.
    the_lab.cluster.kubectl("delete", "helmrelease", "venue", "-n", gitops_ns)
    gone = await gitops_sync.resume(api, ref)
    assert not gone.changed and "not found" in gone.message


def test_the_optional_rbac_grants_exactly_get_and_patch(the_lab: Lab, gitops_ns: str) -> None:
    """manifests/optional/gitops-rbac.yaml, applied to the real API server: the operator's
    ServiceAccount may get and patch the three kinds, and nothing more of them."""
    kubectl = the_lab.cluster.kubectl
    rbac = str(Path(__file__).resolve().parents[2] / "manifests" / "optional" / "gitops-rbac.yaml")
    sa = "--as=system:serviceaccount:venue-operator:venue-operator"
    kinds = ("kustomizations.kustomize.toolkit.fluxcd.io", "helmreleases.helm.toolkit.fluxcd.io",
             "applications.argoproj.io")  # fmt: skip

    def can(verb: str, kind: str) -> bool:
        out = kubectl("auth", "can-i", verb, kind, "-n", gitops_ns, sa, check=False)
        return out.stdout.strip() == "yes"

    kubectl("apply", "-f", rbac)
    try:  # the authorizer sees RBAC changes through a watch: poll for the first answer
        wait_until("the binding in effect", lambda: can("patch", kinds[0]), 30)
        for kind in kinds:
            assert can("get", kind) and can("patch", kind), kind
            assert not can("delete", kind) and not can("update", kind), kind
    finally:
        kubectl("delete", "-f", rbac, "--wait=false", check=False)
    wait_until("the binding gone", lambda: not can("patch", kinds[0]), 30)
