"""gitops (pure) and the GitOps act's plans: who applies a Deployment, from untrusted
metadata; whether the operator may suspend it; the patches that suspend and resume it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from venue_operator.act import ActError
from venue_operator.act.gitops_sync import plan_resume, plan_suspend
from venue_operator.decide import gitops
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.status import (
    GitOpsObject,
    GitOpsStatus,
    GitOpsSuspension,
    VenueServiceStatus,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KS = GitOpsRef("Kustomization", "apps", "flux-system")
HR = GitOpsRef("HelmRelease", "venue", "shop")
APP = GitOpsRef("Application", "venue", "argocd")
FLUX_KS = {"kustomize.toolkit.fluxcd.io/name": "apps",
           "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}  # fmt: skip
FLUX_HR = {"helm.toolkit.fluxcd.io/name": "venue", "helm.toolkit.fluxcd.io/namespace": "shop"}
TRACKING = "argocd.argoproj.io/tracking-id"
INSTANCE = "argocd.argoproj.io/instance"

# (id, labels, annotations, expected owner)
OWNERS: list[tuple[str, Any, Any, GitOpsRef | None]] = [
    ("nothing", {}, {}, None),
    ("no metadata at all", None, None, None),
    ("Flux Kustomization", FLUX_KS, {}, KS),
    ("Flux HelmRelease", FLUX_HR, {}, HR),
    ("HelmRelease before Kustomization", {**FLUX_KS, **FLUX_HR}, {}, HR),
    ("Argo CD instance label", {INSTANCE: "venue"}, {}, APP),
    ("Argo CD instance label, app in any namespace", {INSTANCE: "shop_venue"}, {},
     GitOpsRef("Application", "venue", "shop")),
    ("Argo CD tracking id", {}, {TRACKING: "venue:apps/Deployment:shop/venue-service"}, APP),
    ("tracking id before instance label", {INSTANCE: "other"},
     {TRACKING: "venue:apps/Deployment:shop/venue-service"}, APP),
    ("Flux name without namespace", {"kustomize.toolkit.fluxcd.io/name": "apps"}, {}, None),
    ("Flux namespace with a slash (path traversal)",
     {**FLUX_KS, "kustomize.toolkit.fluxcd.io/namespace": "../kube-system"}, {}, None),
    ("Flux name in capitals", {**FLUX_KS, "kustomize.toolkit.fluxcd.io/name": "Apps"}, {}, None),
    ("Flux name with a newline (log injection)",
     {**FLUX_KS, "kustomize.toolkit.fluxcd.io/name": "apps\nInjected"}, {}, None),
    ("Flux namespace longer than 63", {**FLUX_KS, "kustomize.toolkit.fluxcd.io/namespace":
                                       "a" * 64}, {}, None),
    ("Flux name not a string", {**FLUX_KS, "kustomize.toolkit.fluxcd.io/name": 7}, {}, None),
    ("labels not a mapping", ["kustomize.toolkit.fluxcd.io/name"], "garbage", None),
    ("instance label empty", {INSTANCE: ""}, {}, None),
    ("instance label with two underscores", {INSTANCE: "a_b_c"}, {}, None),
    ("instance label with a space", {INSTANCE: "venue service"}, {}, None),
    ("tracking id with too few parts", {}, {TRACKING: "venue"}, None),
    ("tracking id with too many parts", {}, {TRACKING: "a:b/c:d/e:f"}, None),
    ("tracking id with a bad app name", {}, {TRACKING: "Venue!:apps/Deployment:shop/x"}, None),
    ("tracking id huge", {}, {TRACKING: "a" * 5000 + ":apps/Deployment:shop/x"}, None),
    ("garbage tracking id falls back to the label", {INSTANCE: "venue"}, {TRACKING: "%%%"}, APP),
]  # fmt: skip


@pytest.mark.parametrize(("case", "labels", "annotations", "expected"), OWNERS,
                         ids=[o[0] for o in OWNERS])  # fmt: skip
def test_owner_from_untrusted_metadata(
    case: str, labels: Any, annotations: Any, expected: GitOpsRef | None
) -> None:
    assert gitops.owner(labels, annotations) == expected


INVENTORY = {"status": {"inventory": {"entries": [
    {"id": "shop_venue-service_apps_Deployment", "v": "v1"}]}}}  # fmt: skip
DEPLOYMENT = {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "venue-service"}
RESOURCES = {"status": {"resources": [DEPLOYMENT]}}

# (id, ref, object, may suspend for shop/venue-service)
TRUST: list[tuple[str, GitOpsRef, Any, bool]] = [
    ("same namespace as the VenueService", HR, {}, True),
    ("another namespace, inventory lists the Deployment", KS, INVENTORY, True),
    ("another namespace, nothing listed", KS, {}, False),
    ("another namespace, another Deployment listed", KS, {"status": {"inventory": {"entries": [
        {"id": "shop_other_apps_Deployment"}]}}}, False),
    ("another namespace, listed in another namespace", KS, {"status": {"inventory": {
        "entries": [{"id": "prod_venue-service_apps_Deployment"}]}}}, False),
    ("Application lists the Deployment", APP, RESOURCES, True),
    ("Application lists a Service of that name only", APP, {"status": {"resources": [
        {"group": "", "kind": "Service", "namespace": "shop", "name": "venue-service"}]}}, False),
    ("Application with Flux's inventory shape", APP, INVENTORY, False),
    ("garbage status", KS, {"status": "x"}, False),
    ("garbage entries", KS, {"status": {"inventory": {"entries": ["x", 1, None]}}}, False),
    ("garbage resources", APP, {"status": {"resources": {"a": 1}}}, False),
]  # fmt: skip


@pytest.mark.parametrize(("case", "ref", "obj", "allowed"), TRUST, ids=[t[0] for t in TRUST])
def test_who_may_be_suspended(case: str, ref: GitOpsRef, obj: Any, allowed: bool) -> None:
    refused = gitops.refusal(ref, obj, "shop", "venue-service")
    assert (refused is None) is allowed
    if refused:
        assert str(ref) in refused and "shop/venue-service" in refused


def test_advice_names_the_object_and_what_to_do() -> None:
    resume = "venue-operator resume venue -n shop"
    assert "argocd app set argocd/venue --sync-policy none" in gitops.advice(APP, None, resume)
    assert "flux suspend helmrelease venue -n shop" in gitops.advice(HR, None, resume)
    suspension = GitOpsSuspension(at=NOW, correlation_id="rollback-1", object=gitops.as_object(KS),
                                  change="spec.suspend: unset -> true")  # fmt: skip
    said = gitops.advice(KS, suspension, resume)
    assert "suspended by the operator (spec.suspend: unset -> true)" in said and resume in said
    found = "Kustomization shop/venue already suspended (not by the operator)"
    left = gitops.advice(KS, None, resume, found)
    assert left == f"GitOps: {found}; revert the bad commit in Git before its next sync"


def test_status_keeps_a_suspension_when_the_labels_go() -> None:
    suspension = GitOpsSuspension(at=NOW, correlation_id="r", object=gitops.as_object(KS),
                                  change="c")  # fmt: skip
    before = GitOpsStatus(managed_by=gitops.as_object(KS), suspension=suspension)
    after = gitops.shown(before, None)
    assert after is not None and after.managed_by is None and after.suspension == suspension
    assert gitops.shown(GitOpsStatus(managed_by=gitops.as_object(KS)), None) is None
    assert gitops.shown(None, None) is None


def test_resume_is_acknowledged_only_for_the_suspension_it_names() -> None:
    suspension = GitOpsSuspension(at=NOW, correlation_id="r-1", object=gitops.as_object(KS),
                                  change="c")  # fmt: skip
    status = VenueServiceStatus(gitops=GitOpsStatus(suspension=suspension))
    key = "ops.tickettoken.io/gitops-resumed"
    assert gitops.acknowledge_resume(status, {key: "r-0"}) is None
    assert gitops.acknowledge_resume(status, None) is None
    cleared = gitops.acknowledge_resume(status, {key: "r-1"})
    assert cleared is not None and cleared.gitops is not None and cleared.gitops.suspension is None


def test_the_resumed_message_claims_only_that_our_suspension_is_over() -> None:
    """`resume` also ends a suspension whose object was deleted meanwhile: nothing was
    resumed then, so the Event must not say so."""
    suspension = GitOpsSuspension(at=NOW, correlation_id="r-1", object=gitops.as_object(KS),
                                  change="spec.suspend: unset -> true")  # fmt: skip
    said = gitops.resumed_message(suspension, NOW)
    assert "no longer suspended by the operator" in said and "resumed at" not in said
    assert "r-1" in said and "spec.suspend: unset -> true" in said


# --- the act's plans (pure) ---------------------------------------------------------------

META = {"name": "apps", "namespace": "flux-system", "resourceVersion": "7"}
ANNOTATION = "/metadata/annotations/ops.tickettoken.io~1gitops-suspended"


def suspend(ref: GitOpsRef, obj: dict[str, Any]) -> Any:
    return plan_suspend(ref, obj, "venue-operator (shop/venue)", "rollback-1", NOW)


@pytest.mark.parametrize(("spec", "change", "previous"), [
    ({}, "spec.suspend: unset -> true", None),
    ({"suspend": False}, "spec.suspend: false -> true", "false"),
])  # fmt: skip
def test_suspending_flux_records_the_value_before(
    spec: dict[str, Any], change: str, previous: str | None
) -> None:
    plan = suspend(KS, {"metadata": dict(META), "spec": spec})
    assert plan.ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert plan.ops[1] == {"op": "add", "path": "/spec/suspend", "value": True}
    record = json.loads(plan.ops[2]["value"]["ops.tickettoken.io/gitops-suspended"])
    assert record["change"] == change and record["previous"] == previous
    assert record["correlationId"] == "rollback-1"
    assert plan.suspension.object == GitOpsObject(kind="Kustomization", name="apps",
                                                  namespace="flux-system")  # fmt: skip


def test_suspending_argo_removes_automated_sync_and_keeps_it() -> None:
    automated = {"prune": True, "selfHeal": True}
    obj = {"metadata": {**META, "annotations": {"a": "b"}},
           "spec": {"syncPolicy": {"automated": automated}}}  # fmt: skip
    plan = suspend(APP, obj)
    assert plan.ops[1] == {"op": "remove", "path": "/spec/syncPolicy/automated"}
    assert plan.ops[2]["path"] == ANNOTATION
    assert json.loads(json.loads(plan.ops[2]["value"])["previous"]) == automated


@pytest.mark.parametrize(("ref", "obj", "says"), [
    (KS, {"metadata": META, "spec": {"suspend": True}}, "already suspended (not by the operator)"),
    (APP, {"metadata": META, "spec": {"syncPolicy": {}}}, "no automated sync"),
    (APP, {"metadata": META, "spec": {"syncPolicy": {"automated": {"enabled": False}}}},
     "no automated sync"),
])  # fmt: skip
def test_nothing_to_suspend_writes_nothing(ref: GitOpsRef, obj: dict[str, Any], says: str) -> None:
    plan = suspend(ref, obj)
    assert plan.ops is None and plan.suspension is None and says in plan.message


def suspended_by_us(ref: GitOpsRef, spec: dict[str, Any]) -> dict[str, Any]:
    obj = {"metadata": dict(META), "spec": spec}
    plan = suspend(ref, obj)
    obj["metadata"]["annotations"] = (
        plan.ops[2]["value"]
        if plan.ops[2]["path"].endswith("annotations")
        else {"ops.tickettoken.io/gitops-suspended": plan.ops[2]["value"]}
    )
    if ref.kind == "Application":  # the field change, applied by hand
        obj["spec"]["syncPolicy"].pop("automated")
    else:
        obj["spec"]["suspend"] = True
    return obj


def test_a_rerun_finds_its_own_suspension() -> None:
    obj = suspended_by_us(KS, {})
    plan = suspend(KS, obj)
    assert plan.ops is None and plan.suspension is not None
    assert plan.suspension.correlation_id == "rollback-1"


def test_an_unreadable_record_is_refused() -> None:
    obj = {"metadata": {**META, "annotations": {
        "ops.tickettoken.io/gitops-suspended": json.dumps({"by": "x"})}}, "spec": {}}  # fmt: skip
    with pytest.raises(ActError):
        suspend(KS, obj)


@pytest.mark.parametrize(("ref", "spec", "restore"), [
    (KS, {}, {"op": "remove", "path": "/spec/suspend"}),
    (KS, {"suspend": False}, {"op": "replace", "path": "/spec/suspend", "value": False}),
    (APP, {"syncPolicy": {"automated": {"prune": True}}},
     {"op": "add", "path": "/spec/syncPolicy/automated", "value": {"prune": True}}),
])  # fmt: skip
def test_resume_restores_the_value_before(
    ref: GitOpsRef, spec: dict[str, Any], restore: dict[str, Any]
) -> None:
    plan = plan_resume(ref, suspended_by_us(ref, json.loads(json.dumps(spec))))
    assert plan.ops is not None and plan.ops[1] == restore
    assert plan.ops[-1] == {"op": "remove", "path": ANNOTATION} and "resumed" in plan.message


def test_resume_leaves_a_field_someone_else_changed() -> None:
    obj = suspended_by_us(KS, {})
    obj["spec"]["suspend"] = False  # a human resumed it by hand
    plan = plan_resume(KS, obj)
    assert plan.ops is not None and [op["op"] for op in plan.ops] == ["test", "remove"]
    assert plan.ops[-1]["path"] == ANNOTATION and "left as is" in plan.message


def test_resume_without_our_record_writes_nothing() -> None:
    plan = plan_resume(KS, {"metadata": META, "spec": {"suspend": True}})
    assert plan.ops is None and "not suspended by the operator" in plan.message
