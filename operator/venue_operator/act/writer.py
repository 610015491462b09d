"""The one writer of workloads that the remediator is given: each method is one act
(rollback.py, pause.py, scale.py, migration.py, breaker.py, gitops_sync.py) against the
Kubernetes API. Tests give the remediator another object with the same methods
(`remediate/ports.py`, `Acts`).

This is the Acts port's boundary: whatever the API server refuses leaves it as an ActError
(the server's message in one line, its status), so the remediator knows no client errors."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from venue_operator.act import (
    ActError,
    ActResult,
    breaker,
    gitops_sync,
    migration,
    pause,
    rollback,
    scale,
)
from venue_operator.kube import calls
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.status import GitOpsSuspension, ScaledKind

T = TypeVar("T")


async def _acted(act: Awaitable[T]) -> T:
    """`act`'s answer; the API server's refusal as an ActError with its message and status."""
    try:
        return await act
    except calls.ApiError as exc:
        raise ActError(calls.refusal(exc), exc.status) from exc


@dataclass(frozen=True)
class WorkloadWriter:
    api: calls.Api

    async def roll_back(
        self,
        namespace: str,
        deployment: str,
        to_template: str,
        cause: str,
        rid: str,
        resume: bool = False,
    ) -> ActResult:
        return await _acted(
            rollback.roll_back(self.api, namespace, deployment, to_template, cause, rid, resume)
        )

    async def pause_rollout(self, namespace: str, deployment: str, rid: str) -> ActResult:
        return await _acted(pause.pause_rollout(self.api, namespace, deployment, rid))

    async def set_count(
        self, namespace: str, kind: ScaledKind, name: str, value: int, scaled_from: int | None,
        expect: int | None = None,
    ) -> ActResult:  # fmt: skip
        return await _acted(scale.set_count(self.api, namespace, kind, name, value, scaled_from,
                                            expect))  # fmt: skip

    async def run_migration(self, namespace: str, cronjob: str, rid: str) -> ActResult:
        """`job` of the answer names the Job (the remediator follows it to its end)."""
        return await _acted(migration.run_migration(self.api, namespace, cronjob, rid))

    async def migration_outcome(self, namespace: str, job: str) -> str | None:
        return await _acted(migration.job_outcome(self.api, namespace, job))

    async def set_circuit(
        self, namespace: str, config_map: str, key: str, open_: bool, who: str, reason: str
    ) -> ActResult:
        return await _acted(
            breaker.set_circuit(self.api, namespace, config_map, key, open_, who, reason)
        )

    async def suspend_gitops(
        self, ref: GitOpsRef, namespace: str, deployment: str, who: str, rid: str, now: datetime
    ) -> tuple[ActResult, GitOpsSuspension | None]:
        return await _acted(
            gitops_sync.suspend(self.api, ref, namespace, deployment, who, rid, now)
        )
