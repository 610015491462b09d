"""The whole lab at once: control plane + Prometheus + the VenueService CRD installed."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from venue_lab.cluster import REPO_ROOT, LocalCluster
from venue_lab.processes import wait_until
from venue_lab.prometheus import LocalPrometheus
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.model.crd import CRD_PATH

log = structlog.get_logger(__name__)


@dataclass
class Lab:
    cluster: LocalCluster
    prometheus: LocalPrometheus


def wait_established(cluster: LocalCluster, name: str, timeout: float = 60.0) -> None:
    """Poll a CRD for Established (`kubectl wait --for=condition=...` fails at once while a new
    CRD has no conditions yet: it did under load)."""
    established = '{.status.conditions[?(@.type=="Established")].status}'

    def served() -> bool:
        got = cluster.kubectl("get", "crd", name, "-o", f"jsonpath={established}", check=False)
        return got.stdout == "True"

    wait_until(f"CRD {name} established", served, timeout, interval=0.2)


def install_crd(cluster: LocalCluster, timeout: float = 60.0) -> None:
    """Apply the committed CRD and wait until the API server serves it."""
    name = "venueservices.ops.tickettoken.io"
    cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / CRD_PATH))
    wait_established(cluster, name, timeout)
    # Established can precede discovery by a moment; kubectl needs discovery.
    wait_until(
        "VenueService in discovery",
        lambda: cluster.kubectl("get", "venueservices", "-A", check=False).returncode == 0,
        timeout,
        interval=0.2,
    )


@contextlib.contextmanager
def lab(keep: bool = False, scrape_interval: str = "1s") -> Iterator[Lab]:
    with (
        LocalCluster(keep=keep) as cluster,
        LocalPrometheus(scrape_interval=scrape_interval, keep=keep) as prom,
    ):
        install_crd(cluster)
        yield Lab(cluster, prom)


@contextlib.contextmanager
def following_simulator(
    the_lab: Lab, namespace: str, name: str, *extra_args: str
) -> Iterator[tuple[SimulatorProcess, int]]:
    """A simulated `name` (and its port) that behaves as its Deployment's image says, so a
    rollback heals it; registered as a Prometheus target (wait for it with `wait_target_up`)."""
    args = (f"--follow={namespace}/{name}", f"--kubeconfig={the_lab.cluster.kubeconfig}",
            "--poll-interval=0.2", *extra_args)  # fmt: skip
    with SimulatorProcess(extra_args=args) as sim:
        port = sim.ports()[name]
        target = f"127.0.0.1:{port}"
        the_lab.prometheus.add_target(target, {"namespace": namespace, "service": name})
        try:
            yield sim, port
        finally:
            the_lab.prometheus.remove_target(target)


def run_lab(keep: bool, scrape_interval: str) -> int:
    """`venue-lab lab`: bring everything up and wait for Ctrl-C."""
    started = time.monotonic()
    with lab(keep=keep, scrape_interval=scrape_interval) as the_lab:
        print(f"lab ready in {time.monotonic() - started:.1f}s")
        print(f"export KUBECONFIG={the_lab.cluster.kubeconfig}")
        print(f"prometheus: {the_lab.prometheus.url}")
        print("Ctrl-C to stop")
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # so sigwait gets them
        signal.sigwait(stop_signals)
        print("stopping the lab")
    return 0


def example(name: str) -> Path:
    return REPO_ROOT / "manifests" / "examples" / name


__all__ = ["Lab", "example", "following_simulator", "install_crd", "lab", "run_lab"]
