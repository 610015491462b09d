"""The rollout guard on the real lab: every pod has its own endpoint on its loopback pod IP
(the simulator's --pod-port), behaving as its own image says, so new pods really are worse
than old ones while the Deployment controller rolls out."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import BAD_IMAGE, Venue, deployment, image_of, set_image
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_lab.tls import self_signed

POD_ENDPOINTS = ("--pod-port=3002",)
GOOD_V2 = "gcr.io/tickettoken/venue-service:v2"
REPLICAS = 4
# The service-wide path confirms slowly here (its simulated endpoint turns bad all at once,
# not pod by pod), so what acts is the guard, reading pods every second.
GUARDED = {
    "probe": {"interval": "1s", "timeout": "500ms"},
    "confirmation": {"breaches": 15, "recoveries": 2, "minRequestRate": 1},
    "rolloutGuard": {"interval": "1s"},
}
COMPARISON = re.compile(
    r"new \d+\.\d% 5xx over [\d,]+ requests vs old \d+\.\d% over [\d,]+, p < 0\.001"
)


def rolling_slowly(lab: Lab, namespace: str, **spec: object) -> None:
    """One pod at a time, each available 3 s after Ready (kwok makes pods Ready at once)."""
    patch = {"spec": {"minReadySeconds": 3, "strategy": {"type": "RollingUpdate",
             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, **spec}}  # fmt: skip
    lab.cluster.kubectl("patch", "deployment", "venue-service", "-n", namespace,
                        "--type=merge", "-p", json.dumps(patch))  # fmt: skip


def most_pods_scaled_up(lab: Lab, namespace: str, template: str) -> int:
    """The most replicas the Deployment controller ever gave `template`'s ReplicaSet."""
    out = lab.cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                              "reason=ScalingReplicaSet", "-o", "json").stdout  # fmt: skip
    found = [0]
    for event in json.loads(out)["items"]:
        match = re.search(rf"Scaled up replica set \S+-{template}\S* from \d+ to (\d+)",
                          event["message"])  # fmt: skip
        if match:
            found.append(int(match[1]))
    return max(found)


def template_hash_of(lab: Lab, namespace: str, image: str) -> str:
    out = lab.cluster.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout
    for rs in json.loads(out)["items"]:
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            return str(rs["metadata"]["labels"]["pod-template-hash"])
    raise AssertionError(f"no ReplicaSet runs {image}")


def test_good_rollout_is_untouched_and_a_bad_one_is_paused_early_and_rolled_back(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(replicas=REPLICAS, sim_args=POD_ENDPOINTS, **GUARDED)
    ns, kubectl = venue.namespace, the_lab.cluster.kubectl
    rolling_slowly(the_lab, ns)

    set_image(the_lab, ns, GOOD_V2)
    kubectl("rollout", "status", "-n", ns, "deployment/venue-service", "--timeout=60s")
    good = template_hash_of(the_lab, ns, GOOD_V2)
    venue.wait_status("v2 known-good", lambda s: good in s.get("healthyTemplates", []), 30)
    assert not venue.events("RolloutPaused") and not venue.events("RolledBack")
    assert not deployment(the_lab, ns)["spec"].get("paused")

    set_image(the_lab, ns, BAD_IMAGE)
    paused = venue.wait_event("RolloutPaused", timeout=30)
    rolled = venue.wait_event("RolledBack", timeout=15)
    assert COMPARISON.search(paused["message"]), paused["message"]
    assert COMPARISON.search(rolled["message"]) and "3 -> 2" in rolled["message"]
    after = deployment(the_lab, ns)
    assert image_of(after) == GOOD_V2 and not after["spec"].get("paused")
    bad = template_hash_of(the_lab, ns, BAD_IMAGE)
    assert most_pods_scaled_up(the_lab, ns, bad) <= REPLICAS // 2  # most never ran it
    described = kubectl("describe", "venueservice", "venue-service", "-n", ns).stdout
    assert COMPARISON.search(" ".join(described.split())), described
    assert not venue.events("GuardSourceChanged")  # every pod read directly throughout


def test_a_rollout_that_replaces_every_pod_at_once_is_rolled_back_against_the_baseline(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    """maxSurge 100%, minReadySeconds 0: the old pods are gone a second after the new ones are
    Ready, before any read has counted theirs; the new version is judged against the old
    one's requests before the change (from the lab's Prometheus, scraping every second)."""
    venue = following_venue(replicas=REPLICAS, sim_args=POD_ENDPOINTS, **GUARDED)
    ns = venue.namespace
    at_once = {"spec": {"minReadySeconds": 0, "strategy": {"type": "RollingUpdate",
               "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}}}  # fmt: skip
    the_lab.cluster.kubectl("patch", "deployment", "venue-service", "-n", ns,
                            "--type=merge", "-p", json.dumps(at_once))  # fmt: skip
    started = time.monotonic()
    set_image(the_lab, ns, BAD_IMAGE)
    rolled = venue.wait_event("RolledBack", timeout=15)
    took = time.monotonic() - started
    assert took <= 15, took
    assert "vs the old version before the change" in rolled["message"], rolled["message"]
    assert image_of(deployment(the_lab, ns)) == "gcr.io/tickettoken/venue-service:v1"
    assert not deployment(the_lab, ns)["spec"].get("paused")


ONE_TENANT_BAD = "gcr.io/tickettoken/venue-service:v2-tenant-e"
# tenant-e is a tenth of every pod's traffic
TENTH = '{"tenant_traffic": "tenant-a=9,tenant-b=9,tenant-c=9,tenant-d=9,tenant-e=4"}'


def test_a_version_failing_one_tenant_of_a_tenth_of_the_traffic_is_paused(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    """tenant-e fails 30% on the new version: 3% of all its requests, under the 5% limit,
    so the per-tenant comparison finds it. The overall comparison waits for 1,000 new
    requests here: on a small sample 3% can read over 5% (5.8% over 190 requests once, under
    the full tier's load), and it would act first; over 1,000, 5% is 3.7 standard
    deviations away, and tenant-e's 20 requests come long before."""
    guarded = {**GUARDED, "rolloutGuard": {**GUARDED["rolloutGuard"], "minRequests": 1000}}
    venue = following_venue(replicas=REPLICAS, sim_args=(*POD_ENDPOINTS, f"--pod-faults={TENTH}"),
                            **guarded)  # fmt: skip
    ns = venue.namespace
    rolling_slowly(the_lab, ns)
    set_image(the_lab, ns, ONE_TENANT_BAD)
    paused = venue.wait_event("RolloutPaused", timeout=40)
    rolled = venue.wait_event("RolledBack", timeout=15)
    for message in (paused["message"], rolled["message"]):
        assert "tenant tenant-e: " in message and COMPARISON.search(message), message
    assert image_of(deployment(the_lab, ns)) == "gcr.io/tickettoken/venue-service:v1"
    bad = template_hash_of(the_lab, ns, ONE_TENANT_BAD)
    # paused mid-rollout (how early is bench/rollout_guard.py's "tenant" shape: 2 of 10 on
    # an idle machine; 3 of 4 here once, under the full tier's load)
    assert most_pods_scaled_up(the_lab, ns, bad) < REPLICAS


def test_pods_on_https_at_a_port_and_paths_of_the_specs_are_read_directly(
    the_lab: Lab, following_venue: Callable[..., Venue], tmp_path: Path
) -> None:
    """`rolloutGuard.pods`: each pod serves https with its own certificate on :3443, health and
    metrics under /internal; the guard reads them there (the lab's Prometheus does not scrape
    the pods, so nothing else could have judged the new version on its pods)."""
    cert, key = self_signed(tmp_path)
    pods = {"port": 3443, "scheme": "https", "metricsPath": "/internal/metrics",
            "healthPath": "/internal/health/full"}  # fmt: skip
    venue = following_venue(
        replicas=REPLICAS,
        sim_args=("--pod-port=3443", "--pod-tls", str(cert), str(key),
                  "--pod-path-prefix=/internal"),
        **{**GUARDED, "rolloutGuard": {"interval": "1s", "pods": pods}},
    )  # fmt: skip
    ns = venue.namespace
    rolling_slowly(the_lab, ns)
    set_image(the_lab, ns, BAD_IMAGE)
    venue.wait_status("the guard reading the pods on :3443",
                      lambda s: (s.get("rolloutGuard") or {}).get("message")
                      == "reading each pod on podIP:3443", 20)  # fmt: skip
    paused = venue.wait_event("RolloutPaused", timeout=30)
    rolled = venue.wait_event("RolledBack", timeout=15)
    assert COMPARISON.search(paused["message"]) and "Prometheus" not in paused["message"]
    assert COMPARISON.search(rolled["message"]), rolled["message"]
    assert image_of(deployment(the_lab, ns)) == "gcr.io/tickettoken/venue-service:v1"
    assert most_pods_scaled_up(the_lab, ns, template_hash_of(the_lab, ns, BAD_IMAGE)) <= 2
    assert not venue.events("GuardSourceChanged")


def test_pods_unreachable_on_3002_are_judged_from_prometheus_series_by_pod(
    the_lab: Lab, following_venue: Callable[..., Venue], namespace: str
) -> None:
    """As behind a NetworkPolicy that lets Prometheus in but not the operator: each pod serves
    on its own IP, but on :3003, where the lab's Prometheus scrapes it (file discovery,
    labelled `pod`); the operator's reads of podIP:3002 are refused."""
    listed = the_lab.prometheus.targets_dir / f"pods-{namespace}.json"
    venue = following_venue(replicas=REPLICAS, sim_args=("--pod-port=3003",
                            f"--pod-targets={listed}"), **GUARDED)  # fmt: skip
    ns, kubectl = venue.namespace, the_lab.cluster.kubectl
    wait_until("Prometheus series labelled by pod",
               lambda: len(the_lab.prometheus.query(
                   f'sum by (pod) (http_requests_total{{namespace="{ns}",pod!=""}})'))
               == REPLICAS, 20, interval=0.5)  # fmt: skip
    # Each new pod is judged a scrape (1 s) later than a direct read would: 5 s per pod.
    rolling_slowly(the_lab, ns, minReadySeconds=5)

    set_image(the_lab, ns, BAD_IMAGE)
    venue.wait_status("the guard reading Prometheus",
                      lambda s: (s.get("rolloutGuard") or {}).get("source") == "Prometheus",
                      20)  # fmt: skip
    switched = venue.wait_event("GuardSourceChanged", timeout=10)
    assert switched["type"] == "Warning"
    assert "pods unreachable on :3002; reading Prometheus series by pod" in switched["message"]
    paused = venue.wait_event("RolloutPaused", timeout=30)
    rolled = venue.wait_event("RolledBack", timeout=15)
    for message in (paused["message"], rolled["message"]):
        assert COMPARISON.search(message) and "from Prometheus series by pod" in message, message
    after = deployment(the_lab, ns)
    assert image_of(after) == "gcr.io/tickettoken/venue-service:v1"
    assert not after["spec"].get("paused")
    bad = template_hash_of(the_lab, ns, BAD_IMAGE)
    assert most_pods_scaled_up(the_lab, ns, bad) < REPLICAS  # paused with old pods left
    rollback = [r for r in venue.status().get("history", []) if r["action"] == "RollBack"]
    assert rollback and "from Prometheus series by pod" in rollback[-1]["reason"]
    assert len(venue.events("GuardSourceChanged")) == 1  # said once, not every read
    described = kubectl("describe", "venueservice", "venue-service", "-n", ns).stdout
    assert "from Prometheus series by pod" in " ".join(described.split())


def test_a_stalled_rollout_is_rolled_back(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(replicas=2, sim_args=POD_ENDPOINTS, **GUARDED)
    ns = venue.namespace
    rolling_slowly(the_lab, ns, progressDeadlineSeconds=5)
    # New pods that no node can take: Pending, never Ready, the rollout makes no progress.
    unschedulable = [{"op": "add", "path": "/spec/template/spec/nodeSelector",
                      "value": {"venue-lab/no-such-node": "true"}}]  # fmt: skip
    the_lab.cluster.kubectl("patch", "deployment", "venue-service", "-n", ns, "--type=json",
                            "-p", json.dumps(unschedulable))  # fmt: skip
    rolled = venue.wait_event("RolledBack", timeout=45)
    assert "progressDeadlineSeconds" in rolled["message"]
    after = deployment(the_lab, ns)
    assert "nodeSelector" not in after["spec"]["template"]["spec"]
    assert not after["spec"].get("paused")


def test_dry_run_says_it_would_pause_and_writes_nothing(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(replicas=REPLICAS, sim_args=POD_ENDPOINTS,
                            remediation={"mode": "DryRun"}, **GUARDED)  # fmt: skip
    ns = venue.namespace
    rolling_slowly(the_lab, ns)
    set_image(the_lab, ns, BAD_IMAGE)

    def would_pause() -> bool:
        return any("would pause" in e["message"] for e in venue.events("DryRun"))

    wait_until("a DryRun Event saying it would pause", would_pause, 30, interval=0.25)
    message = next(e["message"] for e in venue.events("DryRun") if "would pause" in e["message"])
    assert COMPARISON.search(message), message
    d = deployment(the_lab, ns)
    assert image_of(d) == BAD_IMAGE and not d["spec"].get("paused")
    assert not venue.events("RolloutPaused") and not venue.events("RolledBack")
    assert any(r["result"] == "DryRun" for r in venue.status().get("history", []))
