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
from venue_operator.crd import CRD_PATH

log = structlog.get_logger(__name__)


@dataclass
class Lab:
    cluster: LocalCluster
    prometheus: LocalPrometheus


def install_crd(cluster: LocalCluster, timeout: float = 60.0) -> None:
    """Apply the committed CRD and wait until the API server serves it."""
    name = "venueservices.ops.tickettoken.io"
    cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / CRD_PATH))
    cluster.kubectl(
        "wait", "--for=condition=Established", f"crd/{name}", f"--timeout={int(timeout)}s"
    )
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


def run_lab(keep: bool, scrape_interval: str) -> int:
    """`venue-operator lab`: bring everything up and wait for Ctrl-C."""
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


__all__ = ["Lab", "example", "install_crd", "lab", "run_lab"]
