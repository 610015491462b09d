"""The ports a remediation speaks through: the workload writer (`Acts`, act/writer.py), the
GitOps suspension, the Events, the status store and the pager; and the `Subject` it is for.
Tests hand the remediator their own objects with the same methods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from venue_operator.act import ActResult
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import GitOpsSuspension, ScaledKind, VenueServiceStatus
from venue_operator.record.transitions import EventSpec


class Acts(Protocol):
    """The workload writes a remediation can make (act/writer.py); each raises ActError only."""

    async def roll_back(
        self,
        namespace: str,
        deployment: str,
        to_template: str,
        cause: str,
        rid: str,
        resume: bool = False,
    ) -> ActResult: ...
    async def pause_rollout(self, namespace: str, deployment: str, rid: str) -> ActResult: ...
    async def set_count(
        self,
        namespace: str,
        kind: ScaledKind,
        name: str,
        value: int,
        scaled_from: int | None,
        expect: int | None = None,
    ) -> ActResult: ...
    async def run_migration(self, namespace: str, cronjob: str, rid: str) -> ActResult: ...
    async def migration_outcome(self, namespace: str, job: str) -> str | None: ...
    async def set_circuit(
        self, namespace: str, config_map: str, key: str, open_: bool, who: str, reason: str
    ) -> ActResult: ...


class GitOpsActs(Protocol):
    """Suspending the GitOps object that would re-apply a rolled-back Deployment."""

    async def suspend_gitops(
        self, ref: GitOpsRef, namespace: str, deployment: str, who: str, rid: str, now: datetime
    ) -> tuple[ActResult, GitOpsSuspension | None]: ...


class Events(Protocol):
    """Events on the VenueService (ref None) or on another object (a ref)."""

    async def post(self, ref: dict[str, Any] | None, event: EventSpec) -> None: ...
    async def post_once(self, ref: dict[str, Any] | None, event: EventSpec, key: str) -> bool: ...


class Store(Protocol):
    """The one writer of the VenueService's status (kube/status_store.py is the real one)."""

    async def save(self, status: VenueServiceStatus, cause: str) -> None: ...


@dataclass(frozen=True)
class Subject:
    """The VenueService a remediation is for, and the Deployment its Events also go to."""

    namespace: str
    name: str
    spec: VenueServiceSpec
    deployment_ref: dict[str, Any] | None  # apiVersion/kind/metadata for Events
    gitops: GitOpsRef | None = None  # the Flux/Argo CD object that applies the Deployment

    @property
    def source(self) -> str:
        """namespace/name: how pages name the VenueService."""
        return f"{self.namespace}/{self.name}"
