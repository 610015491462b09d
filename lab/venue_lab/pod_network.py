"""Pod IPs on loopback: each lab's kwok hands out pod IPs from its own 127.X.0.0/16.

Linux routes all of 127.0.0.0/8 to `lo`, so the simulator can listen on a pod's own IP
and the operator reaches "the pod" at podIP:3002 exactly as it would in a cluster. Several
labs run at once (pytest-xdist workers, other checkouts), so each holds an exclusive
lock on its /16 for its lifetime; the lock dies with the process, never leaking a range.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path
from typing import IO

# 127.0.0.0/16 is the usual loopback; 127.53.x is where resolvers like to sit.
_SECOND_OCTETS = tuple(o for o in range(10, 250) if o != 53)
LOCK_DIR = Path(tempfile.gettempdir()) / "venue-lab-pod-cidrs"


class PodNetwork:
    """One lab's pod range: `cidr` for kwok's `--cidr`; held until `release()`."""

    def __init__(self, octet: int, lock: IO[str]) -> None:
        self.octet = octet
        self._lock = lock

    @property
    def cidr(self) -> str:
        """kwok's `--cidr` form: the gateway address and the prefix length."""
        return f"127.{self.octet}.0.1/16"

    def release(self) -> None:
        self._lock.close()

    @classmethod
    def allocate(cls, rng: random.Random | None = None) -> PodNetwork:
        """Lock a free /16 in 127/8 whose addresses this host can bind."""
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        octets = list(_SECOND_OCTETS)
        (rng or random.Random()).shuffle(octets)
        for octet in octets:
            lock = open(LOCK_DIR / f"127.{octet}.lock", "w")  # noqa: SIM115 held while in use
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            if _bindable(f"127.{octet}.0.2"):
                lock.write(f"{os.getpid()}\n")
                lock.flush()
                return cls(octet, lock)
            lock.close()
        raise RuntimeError("no free 127.X.0.0/16 for pod IPs (every range is locked)")


def _bindable(ip: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError:
            return False
    return True
