"""Optimistic concurrency on the write paths, against the real API server: a second writer
changes the Deployment between our read and our write; we retry and lose no update."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.aio import client

from tests.harness import deployment_manifest
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator import kube
from venue_operator.act import capacity, rollback
from venue_operator.model import ScaledKind


def interfere_once(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]
) -> list[dict[str, Any]]:
    """Wrap kube.get_deployment: after the first read, another writer acts."""
    reads: list[dict[str, Any]] = []
    original = kube.get_deployment

    async def read_then_interfere(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
        found = await original(api, ns, name)
        reads.append(found)
        if len(reads) == 1:
            action()
        return found

    monkeypatch.setattr(kube, "get_deployment", read_then_interfere)
    return reads


def get(lab: Lab, ns: str) -> dict[str, Any]:
    out = lab.cluster.kubectl("get", "deployment", "venue-service", "-n", ns, "-o", "json")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


async def test_scale_retries_after_a_conflict_and_respects_the_other_writer(
    the_lab: Lab, namespace: str, api: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", "-", input=deployment_manifest("venue-service"))
    reads = interfere_once(monkeypatch, lambda: kubectl(
        "scale", "-n", namespace, "deployment/venue-service", "--replicas=5"))  # fmt: skip
    deployment = ScaledKind.DEPLOYMENT
    result = await capacity.set_count(api, namespace, deployment, "venue-service", 3, None)
    assert len(reads) == 2, "the first patch failed its resourceVersion test and was retried"
    assert not result.changed and "already at 5" in result.message
    assert get(the_lab, namespace)["spec"]["replicas"] == 5  # the other writer's 5 stands


async def test_rollback_retries_after_a_conflict_and_keeps_the_other_writers_change(
    the_lab: Lab, namespace: str, api: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", "-", input=deployment_manifest("venue-service"))
    kubectl("rollout", "status", "-n", namespace, "deployment/venue-service", "--timeout=60s")
    good = get(the_lab, namespace)["spec"]["template"]
    kubectl("set", "image", "-n", namespace, "deployment/venue-service",
            "venue-service=gcr.io/tickettoken/venue-service:v2-bad")  # fmt: skip
    kubectl("rollout", "status", "-n", namespace, "deployment/venue-service", "--timeout=60s")
    rs = json.loads(kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)["items"]
    revision = "deployment.kubernetes.io/revision"
    first = next(r for r in rs if r["metadata"]["annotations"][revision] == "1")
    to_hash = first["metadata"]["labels"]["pod-template-hash"]
    reads = interfere_once(monkeypatch, lambda: kubectl(
        "scale", "-n", namespace, "deployment/venue-service", "--replicas=4"))  # fmt: skip
    result = await rollback.roll_back(api, namespace, "venue-service", to_hash, "test", "rid-1")
    # >= 2: the controller's own status writes can also move the resourceVersion.
    assert result.changed and len(reads) >= 2
    after = get(the_lab, namespace)
    assert after["spec"]["template"] == good
    assert after["spec"]["replicas"] == 4  # not lost
    wait_until("revision 3", lambda: get(the_lab, namespace)["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "3", 30)  # fmt: skip
