"""`venue-lab demo` (scripts/demo): the whole system on the local lab, remediating a fault live.

Control plane + Prometheus + the simulator (following the Deployment's image) + the
operator as its own process; then a fault (a bad rollout by default), the Events as
they happen, `kubectl describe venueservice`, and a timeline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab, example, following_simulator, lab
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.kube.status_store import read_back

NAMESPACE = "venue"
NAME = "venue-service"
BAD_IMAGE = "gcr.io/tickettoken/venue-service:v1.2.4-bad"
DEMO_SPEC: dict[str, Any] = {
    "probe": {"interval": "2s", "timeout": "1s"},
    "prometheus": {"rateWindow": "10s"},
    "confirmation": {"breaches": 3, "recoveries": 3},
    "remediation": {
        "mode": "Auto",
        "rollback": {"bakeTime": "15s"},
        "verifyWindow": "60s",
        "cooldowns": {"scale": "5s"},
    },
}
SCENARIOS = ("rollback", "capacity", "database")
# Three tenants; the bad release fails tenant-b four times as often (the report's impact).
DEMO_TENANTS = {"tenant_traffic": "tenant-a=5,tenant-b=2,tenant-c=3",
                "tenant_error_weight": "tenant-b=4"}  # fmt: skip


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, what: str) -> None:
        self.marks.setdefault(what, time.monotonic() - self.started)

    def table(self) -> str:
        rows = [f"  {what:<24} +{at:6.1f} s" for what, at in self.marks.items()]
        return "\n".join(rows)


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


class EventTail:
    """Prints the VenueService's and Deployment's Events as they appear."""

    def __init__(self, the_lab: Lab, timeline: Timeline) -> None:
        self.lab, self.timeline = the_lab, timeline
        self.seen: set[str] = set()
        self.reasons: list[str] = []

    def poll(self) -> None:
        items = self.lab.cluster.read(f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
        items.sort(key=lambda e: e.get("eventTime") or e.get("lastTimestamp") or "")
        for event in items:
            uid = event["metadata"]["uid"]
            source = (event.get("source") or {}).get("component") or event.get("reportingComponent")
            if uid in self.seen or source != "venue-operator":
                continue
            self.seen.add(uid)
            self.reasons.append(event["reason"])
            kind = event["involvedObject"]["kind"]
            at = time.monotonic() - self.timeline.started
            print(f"   +{at:6.1f}s {event['type']:<8} {event['reason']:<20} {kind:<13} "
                  f"{event['message']}", flush=True)  # fmt: skip


def _status(the_lab: Lab) -> dict[str, Any]:
    path = f"/apis/ops.tickettoken.io/v1alpha1/namespaces/{NAMESPACE}/venueservices/{NAME}"
    status: dict[str, Any] = the_lab.cluster.read(path).get("status", {})
    return status


def _watch(
    the_lab: Lab, tail: EventTail, until: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail.poll()
        status = _status(the_lab)
        if status.get("health") in ("Degraded", "Down"):
            tail.timeline.mark("breach confirmed")
        if any(c["observed"] in ("warning", "critical") for c in read_back(status)["checks"]):
            tail.timeline.mark("breach first observed")
        if until(status):
            tail.poll()
            return status
        time.sleep(0.5)  # a display refresh rate, not a synchronisation
    raise TimeoutError(f"demo: nothing happened within {timeout:.0f}s")


def _inject(the_lab: Lab, sim: SimulatorProcess, scenario: str) -> str:
    if scenario == "rollback":
        the_lab.cluster.kubectl("set", "image", "-n", NAMESPACE, f"deployment/{NAME}",
                                f"venue-service={BAD_IMAGE}")  # fmt: skip
        return f"rolled out {BAD_IMAGE} (the simulator answers 12% 5xx for -bad images)"
    if scenario == "capacity":
        sim.set_faults(NAME, pool_saturation=True)
        return "DB pool saturated (pool > 90%, P99 ~1 s)"
    sim.set_faults(NAME, database_down=True)
    return "database down (/health/full checks.database = error)"


ACTION_OF = {"rollback": "RolledBack", "capacity": "ScaledUp", "database": "CircuitOpened"}


def run_demo(keep: bool = False, scenario: str = "rollback") -> int:
    say("starting the local lab (the first run builds the control plane: ~13 min, with progress)")
    with lab(keep=keep) as the_lab:
        timeline = _run(the_lab, scenario, keep)
    say("timeline (from fault injection):")
    print(timeline.table())
    return 0


def _setup(the_lab: Lab, scenario: str) -> dict[str, Any]:
    kubectl = the_lab.cluster.kubectl
    kubectl("create", "namespace", NAMESPACE)
    the_lab.cluster.wait_for_service_account(NAMESPACE)
    kubectl("apply", "-n", NAMESPACE, "-f", str(example("deployment.yaml")))
    spec: dict[str, Any] = json.loads(json.dumps(DEMO_SPEC))  # a deep copy
    if scenario == "capacity":
        spec["remediation"]["rollback"]["recentRolloutWindow"] = "1s"
        spec["remediation"]["scale"] = {
            "minReplicas": 2,
            "maxReplicas": 4,
            "step": 1,
            "onPoolSaturation": True,
        }
        spec["remediation"]["verifyWindow"] = "6s"
    return spec


def _run(the_lab: Lab, scenario: str, keep: bool) -> Timeline:
    kubectl = the_lab.cluster.kubectl
    spec = _setup(the_lab, scenario)
    with following_simulator(the_lab, NAMESPACE, NAME) as (sim, port):
        the_lab.prometheus.wait_target_up(f"127.0.0.1:{port}")
        body = {
            "deployment": {"name": NAME},
            "service": {"url": f"http://127.0.0.1:{port}"},
            **spec,
        }
        venue = {"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                 "metadata": {"name": NAME, "namespace": NAMESPACE}, "spec": body}  # fmt: skip
        kubectl("apply", "-f", "-", input=yaml.safe_dump(venue))
        say(f"simulated {NAME} on 127.0.0.1:{port}; Prometheus {the_lab.prometheus.url}")
        operator = OperatorProcess(
            the_lab.cluster.kubeconfig, the_lab.prometheus.url, namespaces=(NAMESPACE,)
        )
        with operator:
            log_path = operator.log_dir / "operator.log"
            say(f"operator running (log: {log_path}); waiting until the current release is "
                "known-good (healthy for the bake time)")  # fmt: skip
            known_good = lambda: bool(_status(the_lab).get("healthyTemplates"))  # noqa: E731
            wait_until("a known-good release", known_good, 120, 1.0)
            print(kubectl("get", "venueservices", "-n", NAMESPACE).stdout)
            timeline = Timeline()
            tail = EventTail(the_lab, timeline)
            tail.poll()
            tail.reasons.clear()
            timeline.started = time.monotonic()
            sim.set_faults(NAME, **DEMO_TENANTS)
            say("three tenants (a 50%, b 20%, c 30% of the traffic); a failing release fails "
                "tenant-b four times as often")  # fmt: skip
            say(f"fault injected: {_inject(the_lab, sim, scenario)}")
            timeline.mark("fault injected")
            action = ACTION_OF[scenario]
            _watch(the_lab, tail, lambda s: action in tail.reasons, 180)
            timeline.mark(f"action ({action})")
            if scenario != "rollback":
                sim.clear_faults(NAME)
                say("fault removed by hand (the simulator does not model capacity or a database)")
            _watch(the_lab, tail, lambda s: s.get("health") == "Healthy", 180)
            timeline.mark("recovered")
            print(kubectl("get", "venueservices", "-n", NAMESPACE).stdout)
            say(f"kubectl describe venueservice {NAME} -n {NAMESPACE}")
            print(kubectl("describe", "venueservice", NAME, "-n", NAMESPACE).stdout)
            say(f"post-mortem draft: {_report(the_lab)}")
            if keep:
                _hold(the_lab)
    return timeline


def _report(the_lab: Lab) -> Path:
    """`venue-operator report` for the incident just resolved; the Markdown's path."""
    out = Path(tempfile.mkdtemp(prefix="venue-demo-report-"))
    argv = [sys.executable, "-m", "venue_operator.cli", "report", NAME, "-n", NAMESPACE,
            "--prometheus-url", the_lab.prometheus.url, "--out", str(out)]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(the_lab.cluster.kubeconfig)}
    subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=120)
    graphs = ", ".join(sorted(p.name for p in out.glob("*.png"))) or "none"
    say(f"graphs: {graphs}")
    return out / "report.md"


def _hold(the_lab: Lab) -> None:
    say(f"kept running: export KUBECONFIG={the_lab.cluster.kubeconfig}   (Ctrl-C to stop)")
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
