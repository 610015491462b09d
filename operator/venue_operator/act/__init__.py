"""act: the only code that writes workloads. Every write is idempotent: rerunning an action
after a crash finds it done (or finishes it) instead of doing it twice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActResult:
    done: bool  # the workload is (now) in the wanted state
    changed: bool  # this call wrote it (False: it already was)
    message: str


class ActError(RuntimeError):
    """The action cannot be carried out (refused, missing object, conflicts exhausted)."""
