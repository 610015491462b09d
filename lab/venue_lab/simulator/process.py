"""The simulator as a separate process, driven over its control port (tests, demo, benchmarks)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from venue_lab.processes import LabError, Lifecycle, Managed, wait_until


class SimulatorProcess(Lifecycle):
    """`python -m venue_lab.simulator`; add services and switch faults at run time."""

    def __init__(self, workdir: Path | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="venue-sim-"))
        self.ready_file = self.workdir / "ready.json"
        self.extra_args = extra_args
        self.proc: Managed | None = None
        self.control_url = ""

    def start(self, timeout: float = 30.0) -> None:
        argv = [
            sys.executable, "-m", "venue_lab.simulator", "--services=0", "--control-port=0",
            f"--ready-file={self.ready_file}", "--log-json", *self.extra_args,
        ]  # fmt: skip
        self.proc = Managed("simulator", argv, self.workdir / "simulator.log")
        self.proc.start()
        proc = self.proc

        def ready() -> bool:
            proc.check_alive()
            return self.ready_file.exists()

        wait_until("simulator ready file", ready, timeout)
        self.control_url = str(json.loads(self.ready_file.read_text())["control_url"])

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def ports(self) -> dict[str, int]:
        """Service name -> port, as listed in the ready file (e.g. --follow services)."""
        info = json.loads(self.ready_file.read_text())
        return {s["name"]: int(s["port"]) for s in info["services"]}

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.control_url + path, json=body, timeout=10.0)
        if response.status_code >= 400:
            raise LabError(f"simulator {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def add_service(self, name: str, **fields: Any) -> int:
        """Start a simulated service; returns its port on 127.0.0.1."""
        return int(self._call("POST", "/services", {"name": name, **fields})["port"])

    def set_faults(self, name: str, **faults: Any) -> None:
        self._call("PATCH", f"/services/{name}/faults", faults)

    def clear_faults(self, name: str) -> None:
        self._call("DELETE", f"/services/{name}/faults")
