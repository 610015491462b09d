"""Child processes for the local lab: logged to files, polled with deadlines, never orphaned."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the launcher dies (even by SIGKILL)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# Ports are handed out below Linux's ephemeral range (32768-60999), where the kernel picks the
# source port of every outgoing connection: a port picked there and released can be taken by
# one of the lab's many connections before its server binds it (seen under load: a launched
# operator exiting with "Address already in use"). Each pytest-xdist worker draws from its own
# slice, so two workers never hand out the same port; other runs share the last slice.
_PORTS_FROM, _SLICE, _SLICES = 20_000, 1_000, 12
_next_port: list[int] = []


def _slice_start() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) % (_SLICES - 1) if worker[2:].isdigit() else _SLICES - 1
    return _PORTS_FROM + index * _SLICE


def free_port() -> int:
    """A free TCP port on 127.0.0.1, from this process's slice (see above); the next call
    tries the next port, from a start that differs between processes."""
    start = _slice_start()
    if not _next_port:
        _next_port.append(random.Random(os.getpid()).randrange(_SLICE))
    for _ in range(_SLICE):
        port = start + _next_port[0] % _SLICE
        _next_port[0] += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LabError(f"no free port in 127.0.0.1:{start}-{start + _SLICE - 1}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LabError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Lifecycle:
    """`with X() as x:` for lab components: start, stop on a failed start, close on exit."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """What leaving the `with` block does; by default just stop."""
        self.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LabError(RuntimeError):
    """A lab component failed to start or stop; the message points at its log."""


# Polls slow down to this: a long wait then costs the API server, the operator's /metrics and
# the test process a poll every half second instead of ten a second (the full tier is CPU-bound
# on two cores), while a condition that holds soon is still seen within a tenth of a second.
SLOWEST_POLL = 0.5


def wait_until(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    """Poll `probe` until it returns True; raise LabError naming `what` after `timeout` s.
    The pause between polls starts at `interval` and grows by half each time to SLOWEST_POLL."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    pause = interval
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(pause)
        pause = min(pause * 1.5, max(interval, SLOWEST_POLL))
    detail = f" (last error: {last_error})" if last_error else ""
    raise LabError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


# Go's collector for the lab's Go servers (etcd, kube-apiserver, Prometheus, ...): 400, not
# 100; they are about half the full tier's CPU on two cores, and memory is plentiful.
LAB_GOGC = "400"


@dataclass
class Managed:
    """One running component: its process and the log that explains its failures."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # LAB_GOGC unless the component's own environment sets one
        env = {"GOGC": LAB_GOGC, **(os.environ if self.env is None else self.env)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )

    def start_ready(self, url: str, timeout: float, interval: float = 0.1) -> None:
        """Start, then poll `url` until it answers 200; an exit meanwhile fails at once, with
        the log's last lines."""
        self.start()

        def ready() -> bool:
            self.check_alive()
            return httpx.get(url, timeout=2.0).status_code == 200

        wait_until(f"{self.name} at {url}", ready, timeout, interval)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise LabError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"last log lines:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; always reaps the process."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)


def find_binary(name: str, env_var: str) -> str:
    """`$env_var` if set and executable, else `name` on PATH or in /usr/bin (Debian's package
    of that name, which scripts/bootstrap installs)."""
    for candidate in (os.environ.get(env_var), name, f"/usr/bin/{name}"):
        if candidate and shutil.which(candidate):
            return candidate
    raise LabError(f"{name} not found (${env_var}, PATH): run scripts/bootstrap (installs "
                   f"Debian's {name})")  # fmt: skip


def built(script: Path, what: str, override: str | None = None) -> Path:
    """The output directory of a build script under tools/ (it builds the first time, with
    progress on stderr, then answers from the cache; its last stdout line is the directory).
    The environment variable `override` names a prebuilt directory instead."""
    if override and os.environ.get(override):
        return Path(os.environ[override])
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=sys.stderr,
                            text=True)  # fmt: skip
    if result.returncode != 0:
        raise LabError(f"{what} build failed (exit {result.returncode}); see output above")
    return Path(result.stdout.strip().splitlines()[-1])
