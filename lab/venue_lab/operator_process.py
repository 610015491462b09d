"""The operator as a separate process (as it runs in a pod), for tests, demo and benchmarks."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

from venue_lab.processes import Lifecycle, Managed, free_port

# The lab's services answer on loopback and its tests act in seconds: the tenant boundaries'
# safe defaults (tenancy/policy.py) would refuse both, so the lab's operator is told so, as an admin
# would. Caps stay on (a test can still exceed max replicas to see it clamped).
LAB_TENANCY = (
    "--allow-service-cidr=127.0.0.0/8", "--min-cooldown=0", "--min-probe-interval=0",
    "--max-actions-per-hour=100", "--max-replicas=20", "--max-fleet-actions-per-minute=600",
)  # fmt: skip


class OperatorProcess(Lifecycle):
    """`venue-operator run` against a kubeconfig; ready when its liveness endpoint answers."""

    def __init__(
        self,
        kubeconfig: Path,
        prometheus_url: str | None = None,
        namespaces: tuple[str, ...] = (),
        log_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        entry: tuple[str, ...] = ("-m", "venue_operator.cli"),
        tenancy_args: tuple[str, ...] = LAB_TENANCY,
        args: tuple[str, ...] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.namespaces = namespaces
        # The whole command line after `venue-operator` (e.g. a Deployment's container args),
        # instead of the lab's: its ports are the ones it names.
        self.args = args
        self.liveness_port = _port_in(args, "--liveness-port") or free_port()
        self.metrics_port = _port_in(args, "--metrics-port") or free_port()
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="venue-operator-"))
        self.extra_args = extra_args
        self.tenancy_args = tenancy_args
        self.extra_env = env or {}
        self.entry = entry  # what `python` runs: the operator, or a test's wrapper of it
        self.proc: Managed | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None and self.proc.process is not None, "not started"
        return self.proc.process.pid

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def argv(self) -> list[str]:
        if self.args is not None:
            return [sys.executable, *self.entry, *self.args]
        argv = [
            sys.executable, *self.entry, "--log-json", "run",
            f"--liveness-port={self.liveness_port}", f"--metrics-port={self.metrics_port}",
            *self.tenancy_args, *self.extra_args,
        ]  # fmt: skip
        if self.prometheus_url:
            argv.append(f"--prometheus-url={self.prometheus_url}")
        for namespace in self.namespaces:
            argv.append(f"--namespace={namespace}")
        return argv

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1",
               **self.extra_env}  # fmt: skip
        self.proc = Managed("venue-operator", self.argv(), self.log_dir / "operator.log", env=env)
        self.proc.start_ready(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout, 0.2)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.proc and self.proc.process and self.proc.running:
            self.proc.process.send_signal(signal.SIGKILL)
            self.proc.process.wait(timeout=10)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def log(self, lines: int = 200) -> str:
        return self.proc.tail(lines) if self.proc else ""


def _port_in(args: tuple[str, ...] | None, flag: str) -> int | None:
    found = [a.partition("=")[2] for a in args or () if a.startswith(f"{flag}=")]
    return int(found[-1]) if found else None
