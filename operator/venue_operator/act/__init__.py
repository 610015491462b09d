"""act: the only code that writes workloads. Every write is idempotent: rerunning an action
after a crash finds it done (or finishes it) instead of doing it twice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActResult:
    """The workload is (now) in the wanted state; `changed`: this call wrote it."""

    changed: bool
    message: str


class ActError(RuntimeError):
    """The action cannot be carried out (refused, missing object, conflicts exhausted)."""
