"""The local control plane is real: controllers, scheduler, kwok and kubectl all work."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from venue_lab.cluster import BUILD_SCRIPT, LocalCluster
from venue_lab.processes import wait_until
from venue_lab.session import Lab, example


def test_versions_are_the_real_ones(the_lab: Lab) -> None:
    out = json.loads(the_lab.cluster.kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == "v1.36.3"
    assert out["serverVersion"]["gitVersion"] == "v1.36.3"


def test_deployment_rollouts_make_revisions_and_ready_pods(the_lab: Lab, namespace: str) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", str(example("deployment.yaml")))
    for tag in ("v1.2.4", "v1.2.5"):
        kubectl("rollout", "status", "-n", namespace, "deployment/venue-service", "--timeout=60s")
        kubectl(
            "set", "image", "-n", namespace, "deployment/venue-service",
            f"venue-service=gcr.io/tickettoken/venue-service:{tag}",
        )  # fmt: skip
    kubectl("rollout", "status", "-n", namespace, "deployment/venue-service", "--timeout=60s")

    replicasets = json.loads(kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)["items"]
    revisions = sorted(
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
        for rs in replicasets
    )
    assert revisions == [1, 2, 3]

    def pods_ready() -> bool:
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        ready = [p for p in pods if p["spec"]["containers"][0]["image"].endswith(":v1.2.5")]
        return len(ready) == 2 and all(_is_ready(p) for p in ready)

    wait_until("2 Ready pods of revision 3", pods_ready, timeout=60)
    history = kubectl("rollout", "history", "-n", namespace, "deployment/venue-service").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"]


@pytest.mark.cluster  # the Go-built binaries, without the session's lab
def test_second_build_reuses_cached_binaries() -> None:
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=True, timeout=60
    )
    assert "building" not in result.stderr, result.stderr
    assert os.access(os.path.join(result.stdout.strip(), "kube-apiserver"), os.X_OK)


@pytest.mark.cluster  # a lab of its own
def test_cluster_stops_cleanly_without_orphans() -> None:
    cluster = LocalCluster()
    with cluster:
        pids = [p.process.pid for p in cluster.procs.values() if p.process is not None]
        assert len(pids) == 5
        workdir = cluster.workdir
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), f"pid {pid} still running"
    assert not workdir.exists()


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions", [])
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] == "Z"
