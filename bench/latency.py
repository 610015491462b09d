"""Detection-to-action latency: fault injection -> first breach observed -> breach confirmed
-> action written -> service recovered, over many trials.

    .venv/bin/python bench/latency.py --trials 20 --interval 5 --confirmations 3

One lab, one operator process; each trial gets its own namespace, Deployment, simulator
(following the Deployment's image) and VenueService, and trials run a few at a time.
Scenarios: `rollback` (a bad image) and `capacity` (pool saturation -> scale-up).
Prints p50 / p95 / max per stage and the theoretical floor of the configuration:
scrape interval + confirmations x probe interval.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import time
import uuid
from typing import Any

import yaml

from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab, lab
from venue_lab.simulator.process import SimulatorProcess

SCRAPE_S = 1.0
STAGES = ("first breach observed", "breach confirmed", "action written", "recovered")
ACTION = {"rollback": "RolledBack", "capacity": "ScaledUp"}


def _venue(ns: str, port: int, interval: float, confirmations: int, scenario: str) -> str:
    remediation: dict[str, Any] = {"mode": "Auto", "rollback": {"bakeTime": f"{interval * 2:g}s"}}
    if scenario == "capacity":
        remediation["rollback"]["recentRolloutWindow"] = "1s"
    venue = {
        "apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
        "metadata": {"name": "venue-service", "namespace": ns},
        "spec": {"deployment": {"name": "venue-service"},
                 "service": {"url": f"http://127.0.0.1:{port}"},
                 "probe": {"interval": f"{interval:g}s", "timeout": "1s"},
                 "prometheus": {"rateWindow": f"{max(5.0, interval):g}s"},
                 "confirmation": {"breaches": confirmations, "recoveries": confirmations},
                 "remediation": remediation},
    }  # fmt: skip
    return yaml.safe_dump(venue)


def _status(the_lab: Lab, ns: str) -> dict[str, Any]:
    out = the_lab.cluster.kubectl("get", "venueservice", "venue-service", "-n", ns, "-o", "json")
    result: dict[str, Any] = json.loads(out.stdout).get("status", {})
    return result


def _event_seen(the_lab: Lab, ns: str, reason: str) -> bool:
    out = the_lab.cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector",
        f"involvedObject.kind=VenueService,reason={reason}", "-o", "name",
    ).stdout  # fmt: skip
    return bool(out.strip())


def trial(the_lab: Lab, scenario: str, interval: float, confirmations: int) -> dict[str, float]:
    kubectl = the_lab.cluster.kubectl
    ns = f"b-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    the_lab.cluster.wait_for_service_account(ns)
    labels = {"app": "venue-service"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "venue-service", "namespace": ns},
                  "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                               {"name": "venue-service", "image": "venue:v1"}]}}}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(deployment))
    follow = (f"--follow={ns}/venue-service", f"--kubeconfig={the_lab.cluster.kubeconfig}",
              "--poll-interval=0.2")  # fmt: skip
    with SimulatorProcess(extra_args=follow) as sim:
        port = sim.ports()["venue-service"]
        target = f"127.0.0.1:{port}"
        the_lab.prometheus.add_target(target, {"namespace": ns, "service": "venue-service"})
        the_lab.prometheus.wait_target_up(target)
        kubectl("apply", "-f", "-", input=_venue(ns, port, interval, confirmations, scenario))
        wait_until("known good", lambda: bool(_status(the_lab, ns).get("healthyTemplates")),
                   300, 0.5)  # fmt: skip
        t0 = time.monotonic()
        if scenario == "rollback":
            kubectl("set", "image", "-n", ns, "deployment/venue-service",
                    "venue-service=venue:v2-bad")  # fmt: skip
        else:
            sim.set_faults("venue-service", pool_saturation=True)
        marks: dict[str, float] = {}
        deadline = t0 + 300
        while time.monotonic() < deadline and "recovered" not in marks:
            status = _status(the_lab, ns)
            now = time.monotonic() - t0
            if any(c.get("observed") == "critical" for c in status.get("checks", [])):
                marks.setdefault("first breach observed", now)
            if status.get("health") in ("Degraded", "Down"):
                marks.setdefault("breach confirmed", now)
            if "action written" not in marks and _event_seen(the_lab, ns, ACTION[scenario]):
                marks["action written"] = now
                if scenario == "capacity":
                    sim.clear_faults("venue-service")  # the simulator does not model capacity
            if "action written" in marks and status.get("health") == "Healthy":
                marks["recovered"] = now
            time.sleep(0.2)  # the measurement's resolution, not a synchronisation
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return marks


def summarise(name: str, results: list[dict[str, float]], floor: float) -> None:
    print(f"\n{name}: {len(results)} trials; floor (scrape + confirmations x interval) "
          f"= {floor:.1f} s")  # fmt: skip
    print(f"  {'stage':<24} {'p50':>7} {'p95':>7} {'max':>7}  missing")
    for stage in STAGES:
        values = sorted(r[stage] for r in results if stage in r)
        missing = len(results) - len(values)
        if not values:
            print(f"  {stage:<24} {'-':>7} {'-':>7} {'-':>7}  {missing}")
            continue
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        print(f"  {stage:<24} {statistics.median(values):7.1f} {p95:7.1f} {values[-1]:7.1f}"
              f"  {missing}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--confirmations", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=5)
    parser.add_argument("--scenarios", default="rollback,capacity")
    args = parser.parse_args()
    floor = SCRAPE_S + args.confirmations * args.interval
    with (
        lab(scrape_interval="1s") as the_lab,
        OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url, namespaces=("b-*",)),
    ):
        for scenario in args.scenarios.split(","):
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                futures = [pool.submit(trial, the_lab, scenario, args.interval, args.confirmations)
                           for _ in range(args.trials)]  # fmt: skip
                results = [f.result() for f in futures]
            summarise(scenario, results, floor)


if __name__ == "__main__":
    main()
