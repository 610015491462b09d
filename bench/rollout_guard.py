"""The rollout guard's blast radius: a bad version rolled out to a 10-replica Deployment in
each shape, with the guard on and off side by side; then false positives: good rollouts under
a noisy profile and a slow warm-up.

    .venv/bin/python bench/rollout_guard.py --trials 20 --noisy 50 --warmup 20

Shapes (`--shapes`, default all; maxUnavailable 0 throughout):
- surge1: maxSurge 1, minReadySeconds 10, 12% 5xx (the first shape measured, #13);
- surge25: maxSurge 25%, minReadySeconds 10, 12% 5xx;
- surge100: maxSurge 100%, minReadySeconds 0, 12% 5xx (no old pods to compare: the baseline);
- tenant: maxSurge 1, minReadySeconds 10, tenant-e (a tenth of every pod's traffic) at 30%
  5xx, the others fine: 3% overall, under the 5% limit;
- prometheus: maxSurge 1, minReadySeconds 10, 12% 5xx, the pods read only through Prometheus
  (the VenueService reads `rolloutGuard.pods.port` 3003, where nothing listens; Prometheus
  scrapes each pod on :3002, labelled `pod`).

One lab, one operator, one simulator process following every Deployment (`--pod-port`: two
list calls per poll) and serving every pod on its own loopback pod IP. Each trial is its own
namespace, Deployment and VenueService, at the VenueService defaults except
`rollback.bakeTime` (30 s instead of 5 min, as bench/latency.py --defaults) and, for the
"off" trials, `rolloutGuard.enabled: false`; Prometheus scrapes every 15 s. The bad trials
run in batches of `--bad-batch` (guard on and off interleaved), the false-positive rollouts
in batches of `--batch`.

Per trial, from `kubectl set image` (the fault): seconds to the RolloutPaused Event, seconds
until the Deployment runs the good template again, the most pods that ran the bad version at
once, and bad-version pod-seconds (pods polled every 0.5 s, until rolled back or `--timeout`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from venue_lab import manifests
from venue_lab.operator_process import OperatorProcess
from venue_lab.session import Lab, lab
from venue_lab.simulator.control import DEFAULT_RATE
from venue_lab.simulator.process import SimulatorProcess

RESULTS = Path(__file__).resolve().parent / "results"
REPO = "gcr.io/tickettoken/venue-service"
REPLICAS = 10
POLL_S = 0.5


SHAPES = ("surge1", "surge25", "surge100", "tenant", "prometheus")
SURGE = {"surge25": ("25%", 10), "surge100": ("100%", 0)}  # shape -> (maxSurge, minReady)
# tenant-e is a tenth of every pod's traffic (the "tenant" shape's bad version fails it)
TENTH = '{"tenant_traffic": "tenant-a=9,tenant-b=9,tenant-c=9,tenant-d=9,tenant-e=4"}'


@dataclass
class Trial:
    kind: str  # on | off | noisy | warmup
    index: int
    namespace: str
    shape: str = "surge1"
    port: int = 0
    fault_at: float = 0.0  # time.monotonic()
    fault_wall: float = 0.0  # time.time(), against Event timestamps
    paused_at: float | None = None
    rolled_back_at: float | None = None
    completed_at: float | None = None
    max_bad: int = 0
    bad_pod_seconds: float = 0.0
    events: set[str] = field(default_factory=set)
    messages: dict[str, str] = field(default_factory=dict)  # reason -> its first message

    @property
    def service(self) -> str:
        bad = self.kind in ("on", "off")
        return (
            f"{self.kind}-{self.shape}-{self.index:02d}" if bad else f"{self.kind}{self.index:02d}"
        )

    def images(self) -> tuple[str, str]:
        """(before, after) the rollout."""
        if self.kind in ("on", "off"):
            return f"{REPO}:v1", f"{REPO}:v2-{'tenant-e' if self.shape == 'tenant' else 'bad'}"
        return f"{REPO}:v1-{self.kind}", f"{REPO}:v2-{self.kind}"


def deployment(trial: Trial) -> dict[str, Any]:
    body = manifests.deployment("venue-service", trial.images()[0], REPLICAS, trial.namespace)
    surge, ready = SURGE.get(trial.shape, (1, 10))
    body["spec"]["minReadySeconds"] = ready
    body["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0},
    }
    return body


def venue(trial: Trial) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "deployment": {"name": "venue-service"},
        "service": {"url": f"http://127.0.0.1:{trial.port}"},
        # the service's and its pods' series alike (the simulator labels pods by service)
        "prometheus": {"matchLabels": {"service": trial.service}},
        "remediation": {"rollback": {"bakeTime": "30s"}},
    }
    if trial.kind == "off":
        spec["rolloutGuard"] = {"enabled": False}
    elif trial.shape == "prometheus":
        spec["rolloutGuard"] = {"pods": {"port": 3003}}  # nothing listens: Prometheus only
    return {"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
            "metadata": {"name": "venue-service", "namespace": trial.namespace},
            "spec": spec}  # fmt: skip


def kubectl_json(the_lab: Lab, *args: str) -> Any:
    return json.loads(the_lab.cluster.kubectl(*args, "-o", "json", timeout=120).stdout)


def set_up(the_lab: Lab, trials: list[Trial]) -> None:
    kubectl = the_lab.cluster.kubectl
    for t in trials:
        kubectl("create", "namespace", t.namespace)
    for t in trials:
        the_lab.cluster.wait_for_service_account(t.namespace)
    docs = "---\n".join(yaml.safe_dump(deployment(t)) for t in trials)
    kubectl("apply", "-f", "-", input=docs, timeout=300)


def wait_known_good(the_lab: Lab, trials: list[Trial], timeout: float) -> set[str]:
    """Until every old template is known-good, or `timeout`: the namespaces that are. (A noisy
    service touching its 1% warning now and then restarts its bake, and may take long.)"""
    wanted = {t.namespace for t in trials}
    good: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = kubectl_json(the_lab, "get", "venueservices", "-A")["items"]
        good = {i["metadata"]["namespace"] for i in items
                if (i.get("status") or {}).get("healthyTemplates")} & wanted  # fmt: skip
        print(f"  known-good: {len(good)}/{len(wanted)}", flush=True)
        if good == wanted:
            break
        time.sleep(10)
    return good


def roll_out(the_lab: Lab, trials: list[Trial]) -> None:
    for t in trials:
        t.fault_at, t.fault_wall = time.monotonic(), time.time()
        the_lab.cluster.kubectl("set", "image", "-n", t.namespace, "deployment/venue-service",
                                f"venue-service={t.images()[1]}")  # fmt: skip


def lines(the_lab: Lab, kind: str, template: str, *args: str) -> list[list[str]]:
    """`kubectl get KIND -A` as whitespace-split rows of a jsonpath template (cheap to parse)."""
    out = the_lab.cluster.kubectl("get", kind, "-A", *args, "-o",
                                  f"jsonpath={{range .items[*]}}{template}{{\"\\n\"}}{{end}}",
                                  timeout=120).stdout  # fmt: skip
    return [line.split() for line in out.splitlines() if line.strip()]


def _wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def observe(the_lab: Lab, trials: list[Trial], timeout: float) -> None:
    """Poll pods, Deployments and Events until every trial is rolled back or complete.
    Pause and rollback times come from the Events' timestamps (whole seconds)."""
    by_ns = {t.namespace: t for t in trials}
    started = last = time.monotonic()
    while time.monotonic() - started < timeout:
        now = time.monotonic()
        dt, last = now - last, now
        bad: dict[str, int] = {}
        for ns, image in lines(the_lab, "pods", "{.metadata.namespace} {.spec.containers[0].image}",
                               "-l", "app"):  # fmt: skip
            if ns in by_ns and image == by_ns[ns].images()[1]:
                bad[ns] = bad.get(ns, 0) + 1
        rows = lines(the_lab, "events",
                     "{.metadata.namespace} {.reason} {.firstTimestamp} {.message}",
                     "--field-selector", "involvedObject.kind=VenueService")  # fmt: skip
        for ns, reason, stamp, *message in (r for r in rows if len(r) >= 3):
            t = by_ns.get(ns)
            if t is None:
                continue
            t.events.add(reason)
            t.messages.setdefault(reason, " ".join(message))
            if reason == "Escalated" and "warm-up, not the version" in " ".join(message):
                t.events.add("WarmUpEscalated")  # rule 3 held back by the guard's word
            if reason in ("RemediationHeld", "DryRun") and message[:2] == ["rollout", "guard,"]:
                t.events.add("GuardHeld")  # the guard found it bad but held back
            since = max(0.0, _wall(stamp) - t.fault_wall)
            if reason == "RolloutPaused" and t.paused_at is None:
                t.paused_at = since
            if reason == "RolledBack" and t.rolled_back_at is None:
                t.rolled_back_at = since
        template = (
            "{.metadata.namespace} {.spec.template.spec.containers[0].image} "
            "{.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}"
        )
        for row in lines(the_lab, "deployments", template):
            t = by_ns.get(row[0])
            if t is None or len(row) != 5:
                continue
            done = row[2:] == [str(REPLICAS)] * 3
            if row[1] == t.images()[1] and done and t.completed_at is None:
                t.completed_at = now - t.fault_at
        for ns, t in by_ns.items():
            if t.rolled_back_at is None:
                t.max_bad = max(t.max_bad, bad.get(ns, 0))
                t.bad_pod_seconds += bad.get(ns, 0) * dt
        # a guard-off trial is followed until the service-wide path rolls it back (or the
        # timeout): its rollout completing says nothing about that path
        settled = all(t.rolled_back_at is not None
                      or (t.completed_at is not None and t.kind != "off")
                      for t in trials)  # fmt: skip
        if settled and time.monotonic() - started > 45:  # and past a guard's bake window
            return
        time.sleep(max(0.0, POLL_S - (time.monotonic() - now)))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(value: float | None, unit: str = " s") -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def summary(trials: list[Trial]) -> dict[str, Any]:
    paused = [t.paused_at for t in trials if t.paused_at is not None]
    rolled = [t.rolled_back_at for t in trials if t.rolled_back_at is not None]
    return {
        "trials": len(trials),
        "paused": len(paused),
        "rolled_back": len(rolled),
        "pause_p50": pct(paused, 0.5), "pause_p95": pct(paused, 0.95),
        "rollback_p50": pct(rolled, 0.5), "rollback_p95": pct(rolled, 0.95),
        "max_bad_pods": max((t.max_bad for t in trials), default=0),
        "max_bad_pods_p50": statistics.median([t.max_bad for t in trials]) if trials else None,
        "bad_pod_seconds_p50": pct([t.bad_pod_seconds for t in trials], 0.5),
        "bad_pod_seconds_p95": pct([t.bad_pod_seconds for t in trials], 0.95),
    }  # fmt: skip


def print_bad_table(shape: str, on: dict[str, Any], off: dict[str, Any]) -> None:
    rows = [
        ("trials (paused / rolled back)", lambda s: f"{s['trials']} ({s['paused']} / "
         f"{s['rolled_back']})"),
        ("fault -> RolloutPaused p50 / p95", lambda s: f"{fmt(s['pause_p50'])} / "
         f"{fmt(s['pause_p95'])}"),
        ("fault -> rolled back p50 / p95", lambda s: f"{fmt(s['rollback_p50'])} / "
         f"{fmt(s['rollback_p95'])}"),
        ("most pods on the bad version (max; p50)", lambda s: f"{s['max_bad_pods']} of "
         f"{REPLICAS}; {s['max_bad_pods_p50']}"),
        ("bad-version pod-seconds p50 / p95", lambda s: f"{fmt(s['bad_pod_seconds_p50'], '')} / "
         f"{fmt(s['bad_pod_seconds_p95'], '')}"),
    ]  # fmt: skip
    print(f"\n| {shape}: bad version, {REPLICAS} replicas | guard on | guard off |")
    print("|---|---|---|")
    for name, cell in rows:
        print(f"| {name} | {cell(on)} | {cell(off)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials", type=int, default=20, help="bad rollouts per shape, each guard on/off"
    )
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated")
    parser.add_argument("--noisy", type=int, default=50, help="good rollouts, noisy profile")
    parser.add_argument("--warmup", type=int, default=20, help="good rollouts, slow warm-up")
    parser.add_argument("--batch", type=int, default=18, help="false-positive rollouts at once")
    parser.add_argument("--bad-batch", type=int, default=10, help="bad rollouts at once")
    parser.add_argument(
        "--name", default="rollout-guard", help="results/NAME.json, NAME-operator.log"
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="per phase, seconds")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="requests per second of each pod (and service)")  # fmt: skip
    args = parser.parse_args()
    run = uuid.uuid4().hex[:4]
    shapes = [s for s in args.shapes.split(",") if s]
    if unknown := set(shapes) - set(SHAPES):
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    trials = [Trial(kind, i, f"g-{run}-{kind}-{shape}-{i:02d}", shape)
              for shape in shapes for i in range(args.trials)
              for kind in ("on", "off")]  # fmt: skip
    trials += [Trial(kind, i, f"g-{run}-{kind}-{i:02d}")
               for kind, count in (("noisy", args.noisy), ("warmup", args.warmup))
               for i in range(count)]  # fmt: skip
    started = time.monotonic()
    with lab(scrape_interval="15s") as the_lab:
        set_up(the_lab, trials)
        follow = [f"--follow={t.namespace}/venue-service={t.service}" for t in trials]
        pods_listed = the_lab.prometheus.targets_dir / "pods-bench.json"
        sim_args = (*follow, f"--kubeconfig={the_lab.cluster.kubeconfig}", "--poll-interval=0.5",
                    "--pod-port=3002", f"--pod-targets={pods_listed}",
                    f"--pod-faults={TENTH}", f"--rate={args.rate:g}")  # fmt: skip
        with (
            SimulatorProcess(extra_args=sim_args) as sim,
            OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url,
                            namespaces=(f"g-{run}-*",)) as operator,
        ):  # fmt: skip
            ports = sim.ports()
            for t in trials:
                t.port = ports[t.service]
                the_lab.prometheus.add_target(f"127.0.0.1:{t.port}",
                                              {"namespace": t.namespace,
                                               "service": t.service})  # fmt: skip
            docs = "---\n".join(yaml.safe_dump(venue(t)) for t in trials)
            the_lab.cluster.kubectl("apply", "-f", "-", input=docs, timeout=300)
            print(f"set up {len(trials)} trials in {time.monotonic() - started:.0f} s", flush=True)
            # guard on and off interleaved (so each batch has as many of both), shapes mixed
            bad = [t for t in trials if t.kind in ("on", "off")]
            wait_known_good(the_lab, bad, 600)
            known_good = wait_known_good(the_lab, trials, 60 if bad else 600)
            for first in range(0, len(bad), args.bad_batch):
                batch = bad[first : first + args.bad_batch]
                print(f"bad rollouts {first + 1}-{first + len(batch)} of {len(bad)}", flush=True)
                roll_out(the_lab, batch)
                observe(the_lab, batch, args.timeout)
            good = [t for t in trials if t.kind in ("noisy", "warmup")]
            for first in range(0, len(good), args.batch):
                batch = good[first : first + args.batch]
                print(f"good rollouts {first + 1}-{first + len(batch)} of {len(good)}",
                      flush=True)  # fmt: skip
                roll_out(the_lab, batch)
                observe(the_lab, batch, args.timeout)
            operator_log = operator.log(400)
    report(trials, args, time.monotonic() - started, operator_log, known_good)


def report(
    trials: list[Trial], args: argparse.Namespace, seconds: float, log: str, known_good: set[str]
) -> None:
    shapes: dict[str, Any] = {}
    for shape in dict.fromkeys(t.shape for t in trials if t.kind in ("on", "off")):
        on = summary([t for t in trials if t.kind == "on" and t.shape == shape])
        off = summary([t for t in trials if t.kind == "off" and t.shape == shape])
        print_bad_table(shape, on, off)
        shapes[shape] = {"guard_on": on, "guard_off": off}
    print(
        "\n| false positives (good rollouts) | rollouts | completed | judged bad (paused, rolled "
        "back or held) | escalated as warm-up |"
    )
    print("|---|---|---|---|---|")
    fp: dict[str, Any] = {}
    for kind, label in (("noisy", "noisy: 0.8% 5xx in bursts, +300 ms"),
                        ("warmup", "slow (+2.5 s) for its first 5 s")):  # fmt: skip
        group = [t for t in trials if t.kind == kind]
        acted = [t.namespace for t in group
                 if t.paused_at is not None or t.rolled_back_at is not None
                 or {"RolloutPaused", "RolledBack", "GuardHeld"} & t.events]  # fmt: skip
        completed = sum(1 for t in group if t.completed_at is not None)
        baked = sum(1 for t in group if t.namespace in known_good)
        warm = [t.namespace for t in group if "WarmUpEscalated" in t.events]
        fp[kind] = {"rollouts": len(group), "completed": completed, "acted": acted,
                    "known_good_before": baked, "escalated_as_warm_up": warm}  # fmt: skip
        print(f"| {label} | {len(group)} | {completed} | {len(acted)} | {len(warm)} |")
        if baked < len(group):
            print(
                f"  ({len(group) - baked} had no known-good template yet: a bad verdict "
                "there would be held, and is counted)"
            )
    print(f"\ntotal {seconds / 60:.1f} min")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.name}.json"
    out.write_text(json.dumps({
        "args": vars(args), "shapes": shapes, "false_positives": fp,
        "trials": [{k: v for k, v in t.__dict__.items() if k != "events"}
                   | {"events": sorted(t.events)} for t in trials],
    }, indent=2))  # fmt: skip
    (RESULTS / f"{args.name}-operator.log").write_text(log)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
