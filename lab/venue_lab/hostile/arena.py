"""The arena a hostile VenueService is tried in: a fleet of healthy VenueServices (one
simulator process), the hostile server, a victim namespace, and an operator of their own."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from venue_lab import manifests
from venue_lab.hostile.resolving import LOOPBACK
from venue_lab.hostile.server import HostileServer
from venue_lab.operator_process import LAB_TENANCY, OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess


def venue_spec(url: str, interval: str = "1s", **spec: Any) -> dict[str, Any]:
    """A fast VenueService: its probe every `interval`; a 30 s rate window, over which the
    simulator's 0.1 % baseline of errors stays under the 1 % warning (a 5 s window can
    catch one 500 in 100 requests and read Degraded in a clean run)."""
    body: dict[str, Any] = {
        "service": {"url": url},
        "probe": {"interval": interval, "timeout": "500ms"},
        "prometheus": {"rateWindow": "30s"},
        "confirmation": {"breaches": 2, "recoveries": 2, "minRequestRate": 1},
        "remediation": {"mode": "Off"},
    }
    body.update(spec)
    return body


def venue_object(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
            "metadata": {"name": name}, "spec": {"deployment": {"name": name}, **body}}  # fmt: skip


@dataclass
class Fleet:
    """`count` healthy VenueServices in one namespace, served by one simulator process."""

    lab: Lab
    namespace: str
    names: list[str]
    interval_s: float

    def venues(self) -> dict[str, dict[str, Any]]:
        path = f"/apis/ops.tickettoken.io/v1alpha1/namespaces/{self.namespace}/venueservices"
        return {v["metadata"]["name"]: v for v in self.lab.cluster.read(path)["items"]}

    def unhealthy(self) -> list[str]:
        """The fleet's services that are not Healthy with an empty history (as a clean run)."""
        venues = self.venues()
        bad = []
        for name in self.names:
            status = venues.get(name, {}).get("status", {})
            if status.get("health") != "Healthy" or status.get("history"):
                why = [f"{c['name']} {c['level']}: {c.get('reason') or c.get('value')}"
                       for c in status.get("checks", []) if c["level"] != "ok"]  # fmt: skip
                bad.append(f"{name}: {status.get('health')} ({'; '.join(why)}), "
                           f"history {status.get('history')}")  # fmt: skip
        return bad

    def apply(self, *objects: dict[str, Any]) -> None:
        docs = "---\n".join(yaml.safe_dump(o) for o in objects)
        self.lab.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=docs)

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.lab.cluster.events_of(self.namespace, "VenueService", name)


def start_fleet(
    lab: Lab, simulator: SimulatorProcess, namespace: str, count: int = 20, interval: str = "1s"
) -> Fleet:
    names = [f"steady-{i:02d}" for i in range(count)]
    objects: list[dict[str, Any]] = []
    targets = {}
    for name in names:
        port = simulator.add_service(f"{namespace}-{name}")
        targets[f"127.0.0.1:{port}"] = {"namespace": namespace, "service": name}
        objects.append(manifests.deployment(name, manifests.IMAGE, 2))
        objects.append(venue_object(name, venue_spec(f"http://127.0.0.1:{port}", interval)))
    lab.prometheus.add_targets(f"fleet-{namespace}", targets)
    fleet = Fleet(lab, namespace, names, float(interval.rstrip("s")))
    fleet.apply(*objects)
    for target in targets:
        lab.prometheus.wait_target_up(target, timeout=60)
    wait_until(f"{count} healthy VenueServices in {namespace}",
               lambda: not fleet.unhealthy(), 90, interval=0.5)  # fmt: skip
    return fleet


VICTIM_SHARE = 0.9  # the other namespace's error ratio: 90 % would show as a value


@dataclass
class Setup:
    """What `arena` yields: all a case needs to build its spec and judge its status."""

    lab: Lab
    fleet: Fleet
    operator: OperatorProcess
    server: HostileServer
    service_url: str  # a healthy simulated endpoint for hostile specs that are bad elsewhere
    victim: str  # a namespace whose series a tenant must not read
    canary: HostileServer  # on loopback outside the allowed network: must count no request


@contextlib.contextmanager
def namespace(lab: Lab, prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    lab.cluster.kubectl("create", "namespace", name)
    lab.cluster.wait_for_service_account(name)
    try:
        yield name
    finally:
        lab.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _ahead_of_the_test_runner(operator_pid: int, simulator: SimulatorProcess) -> None:
    """The pace measured is what one hostile VenueService costs the others inside the
    operator, not what the full tier's other workers (five more labs on 2 cores) take from
    it: the operator and the simulator it probes run at a higher CPU priority where allowed
    (root, as in CI). Measured on 6 workers at 85% CPU without it: 0.9496 once, beside a
    limit of 0.95 that a real regression (0.86-0.95) crossed."""
    pids = [operator_pid]
    if simulator.proc is not None and simulator.proc.process is not None:
        pids.append(simulator.proc.process.pid)
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, -5)
        except OSError:
            return  # not root: measured as is


@contextlib.contextmanager
def arena(lab: Lab, simulator: SimulatorProcess, count: int = 20) -> Iterator[Setup]:
    """The hostile server, an operator of its own over `h-*` that allows its Prometheus URLs,
    `count` healthy VenueServices, a simulated endpoint for the hostile one, a victim
    namespace (outside `h-*`) whose series show a 90 % error rate, and an exporter in the
    hostile namespace that labels a series with the victim's namespace.

    Its operator allows what an admin of a shared cluster might: the services' one loopback
    address, a wide private network (it holds the API server's ClusterIP) and the host names
    `*.hostile.test`, which resolve as a hostile DNS would (`venue_lab.hostile.resolving`);
    a canary listens on loopback outside the allowed address."""
    with (
        HostileServer() as server,
        HostileServer(LOOPBACK) as canary,
        namespace(lab, "h") as ns,
        namespace(lab, "v") as victim,
    ):
        allow = (*(f"--allow-prometheus-url={u}" for u in server.prometheus_urls()),
                 "--allow-service-host=*.hostile.test")  # fmt: skip
        tenancy = tuple(a for a in LAB_TENANCY if not a.startswith("--allow-service-cidr="))
        tenancy += ("--allow-service-cidr=127.0.0.1/32", "--allow-service-cidr=10.0.0.0/8")
        with OperatorProcess(lab.cluster.kubeconfig, lab.prometheus.url, namespaces=("h-*",),
                             extra_args=allow, tenancy_args=tenancy,
                             entry=("-m", "venue_lab.hostile.resolving")) as operator:  # fmt: skip
            _ahead_of_the_test_runner(operator.pid, simulator)
            fleet = start_fleet(lab, simulator, ns, count=count)
            port = simulator.add_service(f"{ns}-hostile")
            lab.prometheus.add_target(f"127.0.0.1:{port}", {"namespace": ns, "service": "hostile"})
            victim_port = simulator.add_service(f"{victim}-venue")
            simulator.set_faults(f"{victim}-venue", error_ratio=VICTIM_SHARE)
            labels = {"namespace": victim, "service": "venue-service"}
            lab.prometheus.add_target(f"127.0.0.1:{victim_port}", labels)
            # an exporter in the hostile namespace labelling a series with the victim's
            exporter = {"namespace": ns, "service": "exporter",
                        "__metrics_path__": f"/exported/{victim}"}  # fmt: skip
            lab.prometheus.add_target(f"127.0.0.1:{server.port}", exporter)
            try:
                yield Setup(lab, fleet, operator, server, f"http://127.0.0.1:{port}", victim,
                            canary)  # fmt: skip
            finally:  # scraped each second for the rest of a test run otherwise
                lab.prometheus.remove_targets(f"fleet-{ns}")
                for address in (port, victim_port, server.port):
                    lab.prometheus.remove_target(f"127.0.0.1:{address}")
