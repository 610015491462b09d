"""A missing permission degrades the operator instead of killing it (issue #10).

The operator runs as its own process, as a ServiceAccount whose ClusterRole is the repo's
manifests/rbac.yaml without list/watch on Deployments. Before kube/permissions.py, Kopf retried
the forbidden watch for 54 s, evaluated no VenueService meanwhile (it starts handlers only
once every index is listed), then exited 1."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import FAST, Venue, fresh_namespace, venue_outside_session
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab

# module-scoped fixtures: the whole module runs on one xdist worker, in order
pytestmark = pytest.mark.xdist_group("test_permissions")

RBAC = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"
MISSING = "the operator's ServiceAccount may not list/watch deployments.apps (cluster-wide)"


def role_without_deployment_watch(name: str) -> dict[str, Any]:
    (role,) = [d for d in yaml.safe_load_all(RBAC.read_text()) if d and d["kind"] == "ClusterRole"]
    role["metadata"] = {"name": name}
    for rule in role["rules"]:
        if rule["resources"] == ["deployments"]:
            rule["verbs"] = [v for v in rule["verbs"] if v not in ("list", "watch")]
            assert rule["verbs"] == ["get", "patch"]
    return dict(role)


@pytest.fixture(scope="module")
def service_account(the_lab: Lab) -> Iterator[Path]:
    """A kubeconfig for a ServiceAccount bound to that ClusterRole (deleted afterwards)."""
    kubectl = the_lab.cluster.kubectl
    name = f"venue-operator-no-deployments-{uuid.uuid4().hex[:6]}"
    with fresh_namespace(the_lab, "sa") as ns:
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "venue-operator", "namespace": ns}],
        }  # fmt: skip
        role = role_without_deployment_watch(name)
        kubectl("create", "serviceaccount", "venue-operator", "-n", ns)
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all([role, binding]))
        try:
            yield the_lab.cluster.kubeconfig_for("venue-operator", ns)
        finally:
            kubectl("delete", "clusterrolebinding,clusterrole", name, check=False)


@pytest.fixture(scope="module")
def degraded(the_lab: Lab, service_account: Path) -> Iterator[tuple[OperatorProcess, Venue]]:
    """A healthy venue in a d-* namespace, and the operator (watching d-*) started after it."""
    with (
        fresh_namespace(the_lab, "d") as ns,
        venue_outside_session(the_lab, ns, **FAST) as venue,
        OperatorProcess(service_account, the_lab.prometheus.url, namespaces=("d-*",)) as op,
    ):
        yield op, venue


def liveness(op: OperatorProcess) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{op.liveness_port}/healthz", timeout=5)


def metric(op: OperatorProcess, sample_name: str, /, **labels: str) -> float | None:
    """One sample of the operator's own /metrics, parsed by prometheus_client."""
    text = httpx.get(op.metrics_url, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


def evaluations(op: OperatorProcess, venue: Venue) -> float:
    count = metric(op, "venue_operator_evaluations_total", namespace=venue.namespace,
                   name=venue.name)  # fmt: skip
    return count or 0.0


def assert_never_exited(op: OperatorProcess) -> None:
    assert op.proc is not None and op.proc.process is not None
    assert op.proc.process.poll() is None, f"the operator exited:\n{op.log()}"
    assert op.starts == 1


def test_missing_list_watch_is_reported_and_the_operator_stays_up(
    degraded: tuple[OperatorProcess, Venue],
) -> None:
    op, venue = degraded
    answer = liveness(op)  # OperatorProcess.start waited for the first 200
    assert answer.status_code == 200, answer.text
    reported = answer.json().get("permissions", {})
    assert reported.get("degraded") is True, answer.text
    assert reported.get("missing") == {"deployments": MISSING}, answer.text

    for verb in ("list", "watch"):
        assert metric(op, "venue_operator_permission_missing", verb=verb,
                      resource="deployments.apps") == 1.0  # fmt: skip
    assert metric(op, "venue_operator_permission_missing", verb="patch") is None
    assert metric(op, "venue_operator_degraded", reason="permission_missing") == 1.0
    assert metric(op, "venue_operator_degraded", reason="permission_unchecked") == 0.0

    # Kopf starts handlers once every index is listed: the daemon for the venue runs now
    # (its loop turns the absent index into status: the cycle is counted either way).
    def cycled() -> bool:
        errors = metric(op, "venue_operator_evaluation_errors_total",
                        namespace=venue.namespace, name=venue.name)  # fmt: skip
        return evaluations(op, venue) + (errors or 0.0) >= 2

    wait_until("the VenueService's daemon to run two cycles", cycled, 30, interval=0.5)
    assert_never_exited(op)
    assert liveness(op).status_code == 200

    log = (op.log_dir / "operator.log").read_text(errors="replace").splitlines()
    lines = [json.loads(line) for line in log if line.startswith("{")]
    (startup,) = [line for line in lines if line.get("event") == "permissions.missing"]
    assert startup["missing"] == {"deployments": MISSING}
    assert startup["not_watched"] == ["deployments"]
    forbidden = [line for line in log if "APIForbiddenError" in line]  # Kopf retrying a 403
    assert not forbidden, "\n".join(forbidden[:3])


def test_a_venueservice_is_still_evaluated(degraded: tuple[OperatorProcess, Venue]) -> None:
    op, venue = degraded
    wait_until("an evaluation", lambda: evaluations(op, venue) > 0, 30, interval=0.5)
    before = evaluations(op, venue)
    wait_until("more evaluations", lambda: evaluations(op, venue) > before, 30, interval=0.5)
    venue.wait_status("health written", lambda s: bool(s.get("health")), timeout=30)
    # Reported on the VenueService itself: an Event, and the condition says why it can't judge.
    event = venue.wait_event("PermissionMissing", timeout=30)
    assert "may not list/watch deployments.apps" in event["message"]
    venue.wait_status("the Healthy condition names the permission", lambda s: any(
        c["type"] == "Healthy" and "may not list/watch deployments.apps" in c["message"]
        for c in s.get("conditions", [])), timeout=30)  # fmt: skip
    assert_never_exited(op)
