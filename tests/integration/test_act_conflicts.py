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
from venue_operator.act import breaker, rollback, scale
from venue_operator.kube import calls
from venue_operator.model.status import ScaledKind


def interfere_once(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]
) -> list[dict[str, Any]]:
    """Wrap kube.get_deployment: after the first read, another writer acts."""
    reads: list[dict[str, Any]] = []
    original = calls.get_deployment

    async def read_then_interfere(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
        found = await original(api, ns, name)
        reads.append(found)
        if len(reads) == 1:
            action()
        return found

    monkeypatch.setattr(calls, "get_deployment", read_then_interfere)
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
    result = await scale.set_count(api, namespace, deployment, "venue-service", 3, None)
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


async def test_the_api_servers_failed_test_op_is_a_conflict_and_an_invalid_value_is_not(
    the_lab: Lab, namespace: str, api: client.ApiClient
) -> None:
    """What `retry_conflicts` retries, as the real API server words it: a stale resourceVersion
    test is a conflict; a value it will never take (422 too) is not."""
    the_lab.cluster.kubectl("apply", "-n", namespace, "-f", "-",
                            input=deployment_manifest("venue-service"))  # fmt: skip
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
             {"op": "replace", "path": "/spec/replicas", "value": 3}]  # fmt: skip
    invalid = [{"op": "replace", "path": "/spec/replicas", "value": -1}]
    answers = []
    for ops in (stale, invalid):
        with pytest.raises(client.ApiException) as refused:
            await calls.patch_deployment(api, namespace, "venue-service", ops)
        answers.append(refused.value)
    assert [a.status for a in answers] == [422, 422]
    assert calls.is_conflict(answers[0]) and not calls.is_conflict(answers[1])


async def test_the_breaker_rereads_when_a_human_opened_it_between_our_read_and_write(
    the_lab: Lab, namespace: str, api: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The human's write moves the resourceVersion: our merge patch gets a 409, the re-read
    finds the breaker open already, and the human's who/why annotations stand."""
    kubectl = the_lab.cluster.kubectl
    kubectl("create", "configmap", "venue-flags", "-n", namespace, "--from-literal=breaker=false")
    reads: list[Any] = []
    original = calls.get_config_map

    async def read_then_interfere(api: calls.Api, ns: str, name: str) -> dict[str, Any]:
        found = await original(api, ns, name)
        reads.append(found)
        if len(reads) == 1:
            kubectl("patch", "configmap", "venue-flags", "-n", ns, "--type=merge", "-p",
                    '{"metadata":{"annotations":{"ops.tickettoken.io/circuit-set-by":"alice"}},'
                    '"data":{"breaker":"true"}}')  # fmt: skip
        return found

    monkeypatch.setattr(calls, "get_config_map", read_then_interfere)
    result = await breaker.set_circuit(api, namespace, "venue-flags", "breaker", True,
                                       "venue-operator", "database down")  # fmt: skip
    assert len(reads) == 2 and not result.changed and "already has breaker=true" in result.message
    got = kubectl("get", "configmap", "venue-flags", "-n", namespace, "-o", "json")
    cm = json.loads(got.stdout)
    assert cm["metadata"]["annotations"]["ops.tickettoken.io/circuit-set-by"] == "alice"
