"""Killing the operator in the middle of an action must not make it act twice."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests import harness
from venue_lab.operator_process import OperatorProcess
from venue_lab.session import Lab


@pytest.fixture
def crash_namespace(the_lab: Lab) -> Iterator[str]:
    """Outside the session operator's t-* namespaces: only this test's operators act here."""
    with harness.fresh_namespace(the_lab, "k") as name:
        yield name


def test_killed_mid_rollback_rolls_back_exactly_once(the_lab: Lab, crash_namespace: str) -> None:
    ns, kubectl = crash_namespace, the_lab.cluster.kubectl
    with harness.venue_outside_session(the_lab, ns, **harness.FAST) as venue:
        slow = OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url,
                               namespaces=("k-*",),
                               entry=("-m", "tests.fault_operator", "30"))  # fmt: skip
        with slow:
            venue.wait_status("known-good template", lambda s: bool(s.get("healthyTemplates")))
            harness.set_image(the_lab, ns, harness.BAD_IMAGE)
            venue.wait_status(
                "rollback recorded InProgress (written ahead of the patch)",
                lambda s: any(r["action"] == "RollBack" and r["result"] == "InProgress"
                              for r in s.get("history", [])),
            )  # fmt: skip
            slow.kill()  # SIGKILL between the write-ahead record and the Deployment patch
        assert harness.image_of(harness.deployment(the_lab, ns)) == harness.BAD_IMAGE, (
            "killed before the patch"
        )

        with OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url,
                             namespaces=("k-*",)):  # fmt: skip
            venue.wait_event("RolledBack", timeout=60)
            venue.wait_health("Healthy", "None")
            after = harness.deployment(the_lab, ns)
            assert harness.image_of(after) == "gcr.io/tickettoken/venue-service:v1"
            revisions = sorted(
                int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                for rs in json.loads(kubectl("get", "rs", "-n", ns, "-o", "json").stdout)["items"]
            )
            assert revisions == [2, 3], "one rollback: revision 1 reused as 3, never a 4"
            rollbacks = [r for r in venue.status()["history"] if r["action"] == "RollBack"]
            assert len(rollbacks) == 1 and rollbacks[0]["result"] == "Succeeded"
            assert sum(e.get("count", 1) for e in venue.events("RolledBack")) == 1
