"""act: the only code that writes workloads. Every write is idempotent: rerunning an action
after a crash finds it done (or finishes it) instead of doing it twice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActResult:
    """The workload is (now) in the wanted state; `changed`: this call wrote it."""

    changed: bool
    message: str
    job: str | None = None  # the migration Job this act created (or found created)


class ActError(RuntimeError):
    """The action cannot be carried out (refused, missing object, conflicts exhausted): the
    message says why in one line; `status` is the API server's HTTP status when it refused."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def denied(self) -> bool:
        """The operator's ServiceAccount lacks the permission (an optional RBAC part)."""
        return self.status == 403
