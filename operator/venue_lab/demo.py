"""`venue-operator demo`: the local lab with the venue Deployment and its VenueService.

Today it shows the foundation (real control plane, CRD with runbook defaults,
real rollouts with revisions); the remediation loop joins it as it lands.
"""

from __future__ import annotations

import time

from venue_lab.session import example, lab


def run_demo(keep: bool = False) -> int:
    started = time.monotonic()
    print("==> starting the local lab (the first run builds the control plane: 15-30 min)")
    with lab(keep=keep) as the_lab:
        kubectl = the_lab.cluster.kubectl
        elapsed = time.monotonic() - started
        print(f"==> lab up in {elapsed:.1f}s; KUBECONFIG={the_lab.cluster.kubeconfig}")
        kubectl("create", "namespace", "venue")
        the_lab.cluster.wait_for_service_account("venue")
        for name in ("deployment.yaml", "venueservice.yaml"):
            print(kubectl("apply", "-n", "venue", "-f", str(example(name))).stdout.strip())
        kubectl("rollout", "status", "-n", "venue", "deployment/venue-service", "--timeout=60s")
        print("==> rolling out v1.2.4")
        kubectl(
            "set", "image", "-n", "venue", "deployment/venue-service",
            "venue-service=gcr.io/tickettoken/venue-service:v1.2.4",
        )  # fmt: skip
        print(
            kubectl("rollout", "status", "-n", "venue", "deployment/venue-service").stdout.strip()
        )
        print(kubectl("rollout", "history", "-n", "venue", "deployment/venue-service").stdout)
        print(kubectl("get", "pods", "-n", "venue", "-o", "wide").stdout)
        print(kubectl("get", "venueservices", "-n", "venue").stdout)
        spec = kubectl(
            "get", "venuesvc", "venue-service", "-n", "venue", "-o", "jsonpath={.spec.thresholds}"
        ).stdout  # fmt: skip
        print(f"==> thresholds filled in by the API server from the runbook: {spec}")
        if keep:
            print(
                f"==> kept running: export KUBECONFIG={the_lab.cluster.kubeconfig}; Ctrl-C to stop"
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    print(f"==> done in {time.monotonic() - started:.1f}s")
    return 0
