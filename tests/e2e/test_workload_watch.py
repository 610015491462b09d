"""Reads sized to the services (#24): the operator keeps the Pods and ReplicaSets of the
Deployments its VenueServices name, and none of the cluster's others (loop/workload_watch.py),
though it watches them cluster-wide; a Deployment no VenueService names any more is dropped."""

from __future__ import annotations

import httpx

from tests.harness import deployment_manifest, fresh_namespace, venue_manifest
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import free_port, wait_until
from venue_lab.session import Lab


def kept(operator: OperatorProcess, kind: str) -> float:
    text = httpx.get(operator.metrics_url, timeout=5).text
    line = f'venue_operator_kept_objects{{kind="{kind}"}} '
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), -1.0)


def test_only_the_named_deployments_pods_are_kept_and_dropped_with_their_venueservice(
    the_lab: Lab,
) -> None:
    kubectl = the_lab.cluster.kubectl
    with (
        fresh_namespace(the_lab, "kw") as ns,
        OperatorProcess(
            the_lab.cluster.kubeconfig, the_lab.prometheus.url, namespaces=("kw-*",)
        ) as op,
    ):
        # beside it, a Deployment no VenueService names (and every other test's pods)
        kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest("batch", replicas=4))
        kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest("web", replicas=2))
        kubectl("apply", "-n", ns, "-f", "-", input=venue_manifest("web", free_port()))
        batch = ("get", "pods", "-n", ns, "-l", "app=batch", "-o", "name")
        wait_until("the batch Deployment's 4 pods exist",
                   lambda: len(kubectl(*batch).stdout.split()) == 4, 60)  # fmt: skip
        wait_until("web's 2 pods and 1 ReplicaSet kept, nothing else",
                   lambda: (kept(op, "pods"), kept(op, "replicasets")) == (2, 1), 60)  # fmt: skip
        kubectl("delete", "venueservice", "web", "-n", ns)
        wait_until("nothing kept once no VenueService names web",
                   lambda: (kept(op, "pods"), kept(op, "replicasets")) == (0, 0), 30)  # fmt: skip
