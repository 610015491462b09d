"""Detection-to-action latency: fault injection -> first breach observed -> breach confirmed
-> action written -> service recovered, over many trials.

    .venv/bin/python bench/latency.py --trials 20 --interval 5 --confirmations 3
    .venv/bin/python bench/latency.py --defaults --trials 20 --scenarios rollback,capacity,noisy

One lab, one operator process; each trial gets its own namespace, Deployment, simulator
(following the Deployment's image) and VenueService, and trials run a few at a time.
Scenarios: `rollback` (a bad image), `capacity` (pool saturation -> scale-up) and `noisy`
(a healthy service near its warning limits with short error bursts: any action is a false
positive). Prints p50 / p95 / max per stage and the theoretical floor of the configuration:
scrape interval + confirmations x probe interval; the operator runs with
`--metrics-max-age` = the scrape interval, as that floor assumes. `--defaults` leaves the
VenueService at its defaults (15 s interval, 3 confirmations, 1 m rate window; Prometheus
scrapes every 15 s) except `rollback.bakeTime` (30 s instead of 5 min, so a trial need not
wait for it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from venue_lab import manifests
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab, following_simulator, lab
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.kube.status_store import read_back

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("first breach observed", "breach confirmed", "action written", "recovered")
ACTION = {"rollback": "RolledBack", "capacity": "ScaledUp"}
ACTIONS = ("RolledBack", "ScaledUp", "MigrationStarted", "CircuitOpened", "Escalated")
NOISE = {"error_ratio": 0.008, "added_latency_ms": 300.0}  # near 1% and 500 ms, under both
BURST = {"error_ratio": 0.10, "added_latency_ms": 300.0}  # 10% 5xx for BURST_S every PERIOD_S
BURST_S, PERIOD_S = 8.0, 45.0


@dataclass(frozen=True)
class Config:
    interval: float | None  # None: the VenueService's defaults throughout
    confirmations: int
    noisy_minutes: float

    @property
    def scrape_s(self) -> float:
        return 15.0 if self.interval is None else 1.0

    @property
    def operator_args(self) -> tuple[str, ...]:
        # The floor assumes each cycle sees data at most one scrape old: let the shared
        # snapshot be that old at most (by default it may be half an interval old).
        return () if self.interval is None else (f"--metrics-max-age={self.scrape_s:g}",)

    @property
    def floor(self) -> float:
        return self.scrape_s + self.confirmations * (self.interval or 15.0)


def _venue(ns: str, port: int, config: Config, scenario: str) -> str:
    if config.interval is None:
        tuning: dict[str, Any] = {}
        remediation: dict[str, Any] = {"mode": "Auto", "rollback": {"bakeTime": "30s"}}
    else:
        interval = config.interval
        tuning = {"probe": {"interval": f"{interval:g}s", "timeout": "1s"},
                  "prometheus": {"rateWindow": f"{max(5.0, interval):g}s"},
                  "confirmation": {"breaches": config.confirmations,
                                   "recoveries": config.confirmations}}  # fmt: skip
        remediation = {"mode": "Auto", "rollback": {"bakeTime": f"{interval * 2:g}s"}}
    if scenario == "capacity":
        remediation["rollback"]["recentRolloutWindow"] = "1s"
    venue = {
        "apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
        "metadata": {"name": "venue-service", "namespace": ns},
        "spec": {"deployment": {"name": "venue-service"},
                 "service": {"url": f"http://127.0.0.1:{port}"},
                 **tuning, "remediation": remediation},
    }  # fmt: skip
    return yaml.safe_dump(venue)


def _status(the_lab: Lab, ns: str) -> dict[str, Any]:
    out = the_lab.cluster.kubectl("get", "venueservice", "venue-service", "-n", ns, "-o", "json")
    result: dict[str, Any] = json.loads(out.stdout).get("status", {})
    return result


def _event_count(the_lab: Lab, ns: str, reason: str) -> int:
    out = the_lab.cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector",
        f"involvedObject.kind=VenueService,reason={reason}", "-o", "name",
    ).stdout  # fmt: skip
    return len(out.split())


def _noisy(the_lab: Lab, ns: str, sim: SimulatorProcess, minutes: float) -> dict[str, float]:
    """A healthy-but-noisy service for `minutes`: what the operator did about it."""
    sim.set_faults("venue-service", **NOISE)
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        time.sleep(PERIOD_S - BURST_S)  # the noise pattern's own timing
        sim.set_faults("venue-service", **BURST)
        time.sleep(BURST_S)
        sim.set_faults("venue-service", **NOISE)
    return {
        "actions": sum(_event_count(the_lab, ns, reason) for reason in ACTIONS),
        "warnings": _event_count(the_lab, ns, "ThresholdBreached"),
        "minutes": minutes,
    }


def trial(the_lab: Lab, scenario: str, config: Config) -> dict[str, Any]:
    kubectl = the_lab.cluster.kubectl
    ns = f"b-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    the_lab.cluster.wait_for_service_account(ns)
    deployment = manifests.deployment("venue-service", "venue:v1", namespace=ns)
    kubectl("apply", "-f", "-", input=json.dumps(deployment))
    with following_simulator(the_lab, ns, "venue-service") as (sim, port):
        the_lab.prometheus.wait_target_up(f"127.0.0.1:{port}")
        kubectl("apply", "-f", "-", input=_venue(ns, port, config, scenario))
        wait_until("known good", lambda: bool(_status(the_lab, ns).get("healthyTemplates")),
                   300, 0.5)  # fmt: skip
        if scenario == "noisy":
            noise = _noisy(the_lab, ns, sim, config.noisy_minutes)
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
            return noise
        t0 = time.monotonic()
        if scenario == "rollback":
            kubectl("set", "image", "-n", ns, "deployment/venue-service",
                    "venue-service=venue:v2-bad")  # fmt: skip
        else:
            sim.set_faults("venue-service", pool_saturation=True)
        marks: dict[str, Any] = {"trace": []}
        deadline = t0 + 300
        while time.monotonic() < deadline and "recovered" not in marks:
            status = _status(the_lab, ns)
            now = time.monotonic() - t0
            checks = read_back(status)["checks"]
            seen = sorted((c["name"], c.get("observed"), c.get("level"), c.get("value"))
                          for c in checks if c.get("observed") != "ok")  # fmt: skip
            if not marks["trace"] or marks["trace"][-1][1] != seen:
                marks["trace"].append((round(now, 1), seen))  # what status said, and when
            if any(c.get("observed") == "critical" for c in checks):
                marks.setdefault("first breach observed", now)
            if status.get("health") in ("Degraded", "Down"):
                marks.setdefault("breach confirmed", now)
            if "action written" not in marks and _event_count(the_lab, ns, ACTION[scenario]):
                marks["action written"] = now
                if scenario == "capacity":
                    sim.clear_faults("venue-service")  # the simulator does not model capacity
            if "action written" in marks and status.get("health") == "Healthy":
                marks["recovered"] = now
            time.sleep(0.2)  # the measurement's resolution, not a synchronisation
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return marks


def summarise(name: str, results: list[dict[str, Any]], floor: float) -> None:
    if name == "noisy":
        minutes = sum(r["minutes"] for r in results)
        print(f"\nnoisy: {len(results)} services x {results[0]['minutes']:g} min "
              f"({minutes:g} service-minutes): {sum(r['actions'] for r in results):g} actions, "
              f"{sum(r['warnings'] for r in results):g} ThresholdBreached Events")  # fmt: skip
        return
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
    parser.add_argument("--defaults", action="store_true", help="VenueService defaults")
    parser.add_argument("--noisy-minutes", type=float, default=10.0)
    parser.add_argument("--noisy-services", type=int, default=10, help="all at once")
    parser.add_argument("--parallel", type=int, default=5)
    parser.add_argument("--scenarios", default="rollback,capacity")
    args = parser.parse_args()
    config = Config(None if args.defaults else args.interval,
                    3 if args.defaults else args.confirmations, args.noisy_minutes)  # fmt: skip
    with (
        lab(scrape_interval=f"{config.scrape_s:g}s") as the_lab,
        OperatorProcess(
            the_lab.cluster.kubeconfig,
            the_lab.prometheus.url,
            namespaces=("b-*",),
            extra_args=config.operator_args,
        ),  # fmt: skip
    ):
        for scenario in args.scenarios.split(","):
            trials = args.noisy_services if scenario == "noisy" else args.trials
            parallel = args.noisy_services if scenario == "noisy" else args.parallel
            with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
                futures = [pool.submit(trial, the_lab, scenario, config)
                           for _ in range(trials)]  # fmt: skip
                results = [f.result() for f in futures]
            summarise(scenario, results, config.floor)
            label = "defaults" if config.interval is None else f"{config.interval:g}s"
            out = RESULTS / f"latency-{scenario}-{label}.json"
            out.write_text(json.dumps(results, indent=1) + "\n")  # every trial's marks


if __name__ == "__main__":
    main()
