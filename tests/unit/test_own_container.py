"""#22 item 6: a sidecar's restarts and readiness never count against a version; only the
service's own container's do (named in spec.deployment.container, else the one exposing the
service's port)."""

from __future__ import annotations

from typing import Any

import pytest

from venue_operator.guard.pod_metrics import PodTarget
from venue_operator.loop.workload import workload_from_indexes
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.observe.cluster import own_view, pod_summary


def pod(sidecar_restarts: int = 7, sidecar_looping: bool = True) -> dict[str, Any]:
    """A new pod whose app container is fine and whose mesh sidecar keeps restarting."""
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}} if sidecar_looping else {"running": {}}
    return {
        "metadata": {"name": "venue-h2-a", "labels": {"pod-template-hash": "h2"},
                     "creationTimestamp": "2026-12-06T10:00:00Z",
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "venue-h2"}]},
        "spec": {"containers": [
            {"name": "app", "ports": [{"containerPort": 3002}]},
            {"name": "istio-proxy", "ports": [{"containerPort": 15090}]},
        ]},
        "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [
                       {"name": "app", "restartCount": 0, "ready": True, "state": {"running": {}}},
                       {"name": "istio-proxy", "restartCount": sidecar_restarts, "ready": False,
                        "state": waiting},
                   ]},
    }  # fmt: skip


def spec(**deployment: str) -> VenueServiceSpec:
    return VenueServiceSpec.model_validate(
        {"deployment": {"name": "venue", **deployment}, "service": {"url": "http://venue:3002"}}
    )


@pytest.mark.parametrize(
    "chosen", [spec(), spec(container="app")], ids=["by the service port", "by name"]
)
def test_a_sidecars_restarts_and_readiness_are_not_the_versions(chosen: VenueServiceSpec) -> None:
    summary = pod_summary(pod())
    assert (summary["restarts"], summary["crash_looping"], summary["ready"]) == (7, True, False)
    own = own_view(summary, chosen.deployment.container, chosen.service.port)
    assert (own["restarts"], own["crash_looping"], own["ready"]) == (0, False, True)
    target = PodTarget.of(own)
    assert target is not None and target.restarts == 0 and target.ready


def test_the_named_container_wins_and_an_unknown_one_means_the_whole_pod() -> None:
    summary = pod_summary(pod())
    sidecar = own_view(summary, "istio-proxy", 3002)
    assert (sidecar["restarts"], sidecar["crash_looping"]) == (7, True)
    nowhere = own_view(summary, "no-such-container", 3002)
    assert nowhere["restarts"] == 7  # named but absent: not guessed by port
    unmatched = own_view(summary, None, 8080)  # nobody exposes the port: the whole pod
    assert unmatched["restarts"] == 7


def test_the_service_port_is_the_urls_or_the_runbooks() -> None:
    assert spec().service.port == 3002
    assert (
        VenueServiceSpec.model_validate(
            {"deployment": {"name": "v"}, "service": {"url": "https://venue.example"}}
        ).service.port
        == 443
    )
    assert VenueServiceSpec.model_validate({"deployment": {"name": "v"}}).service.port == 3002


def test_the_workload_counts_no_sidecar_crash_loop_against_the_service() -> None:
    deployment = {"name": "venue", "uid": "u", "replicas": 1, "ready": 0, "revision": 2,
                  "paused": False, "rolled_back_to": None}  # fmt: skip
    replicaset = {"name": "venue-h2", "revision": 2, "hash": "h2",
                  "created": "2026-12-06T10:00:00Z", "migration": None,
                  "backward_compatible": False}  # fmt: skip
    indexes = {"deployments": {("ns", "venue"): [deployment]},
               "replicasets": {("ns", "venue"): [replicaset]},
               "pods": {("ns", "venue-h2"): [pod_summary(pod())]}, "jobs": {}}  # fmt: skip
    state, _ = workload_from_indexes("ns", spec(), indexes)
    assert state.crash_looping == 0
    whole, _ = workload_from_indexes("ns", spec(container="istio-proxy"), indexes)
    assert whole.crash_looping == 1
