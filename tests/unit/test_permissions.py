"""The pure part of the permission check: SelfSubjectAccessReview answers -> report."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest
import yaml

from venue_operator.cli import handlers
from venue_operator.kube.permissions import (
    CLUSTER_WIDE,
    LEASES,
    NEEDS,
    Denied,
    PermissionReport,
    Review,
    report,
    reviews,
    scopes,
)

REPO = Path(__file__).resolve().parents[2]


def answers(where: tuple[str, ...], **refused: bool | None) -> dict[Review, bool | None]:
    """Every review allowed, except `verb_resource_namespace=False/None` overrides."""
    result: dict[Review, bool | None] = dict.fromkeys(reviews(NEEDS, where), True)
    for spec, answer in refused.items():
        verb, resource, namespace = spec.split("__")
        matched = [r for r in result if (r.verb, r.resource, r.namespace) ==
                   (verb, resource.replace("_", "/"), namespace)]  # fmt: skip
        assert matched, spec
        for review in matched:
            result[review] = answer
    return result


def test_all_granted_is_not_degraded() -> None:
    found = report(answers((CLUSTER_WIDE,)), (CLUSTER_WIDE,))
    assert found == PermissionReport()
    assert not found.degraded and found.allows("deployments")
    assert found.probe() == {"degraded": False, "missing": {}, "unchecked": []}


def test_no_list_watch_on_deployments_names_the_index() -> None:
    found = report(answers((CLUSTER_WIDE,), list__deployments__=False,
                           watch__deployments__=False), (CLUSTER_WIDE,))  # fmt: skip
    assert found.missing == {
        "deployments": "the operator's ServiceAccount may not list/watch deployments.apps "
        "(cluster-wide)"
    }
    assert found.denied == (Denied("list", "deployments.apps"), Denied("watch", "deployments.apps"))
    assert found.degraded and not found.allows("deployments") and found.allows("pods")
    assert found.probe()["missing"] == found.missing


def test_only_the_refused_verb_and_namespaces_are_named() -> None:
    where = scopes(["b", "a", "c"])
    found = report(answers(where, watch__pods__b=False, watch__pods__c=False), where)
    assert found.missing == {
        "pods": "the operator's ServiceAccount may not watch pods (in namespaces b, c)"
    }


def test_with_shards_the_leases_in_the_operators_namespace_are_checked_there() -> None:
    where = (CLUSTER_WIDE,)
    asked = {**answers(where), **dict.fromkeys(reviews([LEASES], ("ops",)), True)}
    assert report(asked, where, "ops") == PermissionReport()
    refused = {r: r.verb != "patch" for r in reviews([LEASES], ("ops",))}
    found = report({**answers(where), **refused}, where, "ops")
    assert found.missing == {
        "leases": "the operator's ServiceAccount may not patch leases.coordination.k8s.io "
        "(in namespace ops)"
    }
    assert found.degraded and found.allows("pods")
    # without --shards, nothing is asked about Leases and nothing is missing
    assert report(answers(where), where) == PermissionReport()


def test_writes_and_subresources_are_keyed_by_verb_and_resource() -> None:
    found = report(answers(("a",), patch__venueservices_status__a=False,
                           create__jobs__a=False), ("a",))  # fmt: skip
    assert found.missing == {
        "patch venueservices/status": "the operator's ServiceAccount may not patch "
        "venueservices.ops.tickettoken.io/status (in namespace a)",
        "create jobs": "the operator's ServiceAccount may not create jobs.batch (in namespace a)",
    }
    assert found.allows("jobs")  # the index: list/watch were granted


def test_a_review_that_failed_is_unchecked_not_missing() -> None:
    found = report(answers((CLUSTER_WIDE,), list__replicasets__=None), (CLUSTER_WIDE,))
    assert found.missing == {} and found.unchecked == ("replicasets",)
    assert found.allows("replicasets")  # unknown: behave as before the check existed
    # a refusal wins over an unknown answer for the same need
    mixed = answers((CLUSTER_WIDE,), list__replicasets__=None, watch__replicasets__=False)
    assert set(report(mixed, (CLUSTER_WIDE,)).missing) == {"replicasets"}


@pytest.mark.parametrize(
    ("namespaces", "expected"),
    [
        ((), (CLUSTER_WIDE,)),
        (("t-*",), (CLUSTER_WIDE,)),
        (("prod", "stage-?"), (CLUSTER_WIDE,)),
        (("prod,!prod-x",), (CLUSTER_WIDE,)),
        (("b", "a", "b"), ("a", "b")),
    ],
)
def test_scopes_ask_cluster_wide_for_patterns(
    namespaces: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert scopes(namespaces) == expected


def test_every_rule_of_the_cluster_role_is_checked() -> None:
    """manifests/rbac.yaml grants what the operator uses; the check asks about all of it but
    what Kopf itself degrades on (namespaces, CRDs) and the `check` command's GET."""
    docs = yaml.safe_load_all((REPO / "manifests" / "rbac.yaml").read_text())
    (role,) = [d for d in docs if d and d["kind"] == "ClusterRole"]
    granted = {(verb, group, resource) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}  # fmt: skip
    checked = {(verb, need.group, need.resource) for need in NEEDS for verb in need.verbs}
    not_checked = {("list", "", "namespaces"), ("watch", "", "namespaces"),
                   ("list", "apiextensions.k8s.io", "customresourcedefinitions"),
                   ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
                   ("get", "ops.tickettoken.io", "venueservices"),
                   # the API server's addresses: refused, the operator's own is kept
                   ("get", "", "services"), ("get", "discovery.k8s.io", "endpointslices"),
                   # optional (no KEDA, no rule): checked where used, per VenueService
                   ("get", "keda.sh", "scaledobjects"),
                   ("patch", "keda.sh", "scaledobjects")}  # fmt: skip
    assert checked == granted - not_checked


@pytest.mark.parametrize(
    "refused",
    [(), ("deployments",), ("venueservices", "jobs", "pods"), ("horizontalpodautoscalers",)],
)
def test_register_only_what_can_be_watched(refused: tuple[str, ...]) -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(PermissionReport(missing=dict.fromkeys(refused, "denied")), registry)
    # Kopf has no public listing of a registry's handlers
    indexes = {h.id for h in registry._indexing.get_all_handlers()}
    daemons = {h.id for h in registry._spawning.get_all_handlers()}
    assert indexes == set(handlers.INDEXES) - set(refused)
    assert daemons == (set() if "venueservices" in refused else {"watch_venue_service"})
