"""The rollout watch: from a pod-template change until the rollout is complete and baked,
every `rolloutGuard.interval`, read every pod of the Deployment, judge new against old
(rollout_guard.py), and on a confirmed bad or stalled version pause and roll back
(guard_decide.py, carried out by the Remediator with its write-ahead record).

Driven by the service loop between its cycles; the Deployment, its ReplicaSets and pods come
from the watch-fed indexes, so noticing a template change costs no API call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from venue_operator import keys
from venue_operator.decide import rollout_facts
from venue_operator.guard_decide import decide_guard
from venue_operator.model import Condition, VenueServiceSpec
from venue_operator.observations import WorkloadState
from venue_operator.observe.pods import PodTarget
from venue_operator.reasons import Reason
from venue_operator.record import EventSpec
from venue_operator.remediate import Remediator, Subject
from venue_operator.rollout_guard import (
    GuardLimits,
    GuardState,
    Judgement,
    PodSample,
    RolloutRead,
    Verdict,
    advance,
)
from venue_operator.status_store import StatusStore

log = structlog.get_logger(__name__)

ReadPods = Callable[[Iterable[PodTarget], float], Awaitable[tuple[PodSample, ...]]]


@dataclass
class RolloutWatch:
    """One VenueService's watch; `state` is None between rollouts."""

    namespace: str
    read_pods: ReadPods
    remediator: Remediator
    store: StatusStore
    state: GuardState | None = None
    seen_hash: str | None = None
    complete_since: datetime | None = None
    settled: bool = False  # acted (or said why not) on this rollout: judge no more
    unreachable: int | None = None  # Ready pods, when none of them answered

    @property
    def watching(self) -> bool:
        return self.state is not None

    async def tick(
        self,
        spec: VenueServiceSpec,
        indexes: Mapping[str, Any],
        workload: WorkloadState,
        subject: Subject,
        paused: bool,
    ) -> None:
        """Start, continue or end the watch; read and judge while it runs."""
        now = datetime.now(UTC)
        name = spec.deployment.name
        found = list(indexes["deployments"].get((self.namespace, name), []))
        replicasets = list(indexes["replicasets"].get((self.namespace, name), []))
        if not spec.rollout_guard.enabled or not found:
            self.state = None
            return
        deployment = found[0]
        self._follow(deployment, workload, spec, now)
        if self.state is None or self.settled:
            return
        pods = [
            target
            for rs in replicasets
            for summary in indexes["pods"].get((self.namespace, rs["name"]), [])
            if not summary.get("deleting") and (target := PodTarget.of(summary)) is not None
        ]
        seconds = min(spec.probe.timeout, spec.rollout_guard.interval).total_seconds()
        samples = await self.read_pods(pods, seconds)
        ready = [s for s in samples if s.ready]
        blind = bool(ready) and not any(s.reachable for s in ready)
        self.unreachable = len(ready) if blind else None
        read = RolloutRead(
            now, self.state.new_hash, samples, bool(deployment.get("progress_deadline_exceeded"))
        )
        self.state, judgement = advance(self.state, read, GuardLimits.from_spec(spec))
        if judgement.verdict is Verdict.SUSPECT:
            log.info("rollout_guard.suspect", namespace=self.namespace, deployment=name,
                     reason=judgement.reason)  # fmt: skip
        if judgement.verdict not in (Verdict.BAD, Verdict.STALLED):
            return
        await self._act(judgement, workload, subject, paused, deployment, now)

    def _follow(
        self,
        deployment: Mapping[str, Any],
        workload: WorkloadState,
        spec: VenueServiceSpec,
        now: datetime,
    ) -> None:
        new_hash = workload.template_hash
        if not new_hash:
            return
        first = self.seen_hash is None
        changed = new_hash != self.seen_hash
        self.seen_hash = new_hash
        ours = workload.rolled_back_to == new_hash
        in_progress = not deployment.get("complete")
        # A Deployment's first ReplicaSet replaces nothing: there is no old version to compare.
        replacing = any(r.number < (workload.revision or 0) for r in workload.revisions)
        if changed and not ours and replacing and (not first or in_progress):
            started = workload.rollout_started_at or now
            self.state = GuardState.begin(min(started, now), new_hash)
            self.complete_since, self.settled = None, False
            log.info("rollout_guard.watching", namespace=self.namespace,
                     deployment=deployment["name"], template=new_hash)  # fmt: skip
            return
        if changed and ours:
            self.state = None
        if self.state is None:
            return
        if not deployment.get("complete") or deployment.get("paused"):
            self.complete_since = None
            return
        self.complete_since = self.complete_since or now
        if now - self.complete_since >= spec.remediation.rollback.bake_time:
            log.info("rollout_guard.done", namespace=self.namespace, template=new_hash)
            self.state = None

    async def _act(
        self,
        judgement: Judgement,
        workload: WorkloadState,
        subject: Subject,
        paused: bool,
        deployment: Mapping[str, Any],
        now: datetime,
    ) -> None:
        status = self.store.known
        decision = decide_guard(
            judgement, rollout_facts(workload, status), status, subject.spec.remediation, now,
            paused, bool(deployment.get("paused_by_guard")),
        )  # fmt: skip
        self.settled = True
        log.warning("rollout_guard.bad", namespace=self.namespace, reason=decision.reason,
                    action=decision.action, dry_run=decision.dry_run)  # fmt: skip
        if decision.action is None:
            key = f"{self.state.new_hash if self.state else ''}/{decision.held}"
            event = EventSpec("Warning", Reason.REMEDIATION_HELD, decision.reason)
            await self.remediator.events.post_once(None, event, f"guard/{key}")
            return
        status = await self.remediator.carry_out(subject, status, decision, now)
        await self.store.save_changes(status)


def guard_condition(
    watch: RolloutWatch | None, before: Condition | None, now: datetime
) -> Condition | None:
    """`RolloutGuard` in status while a rollout is watched: True while the pods answer on
    their own IPs, False (PodsUnreachable) when none does (e.g. a NetworkPolicy)."""
    if watch is None or watch.state is None:
        return None
    template = watch.state.new_hash
    if watch.unreachable is None:
        status, reason = "True", "Watching"
        message = f"comparing the new pods (template {template}) with the old ones on podIP:3002"
    else:
        status, reason = "False", "PodsUnreachable"
        message = (
            f"none of {watch.unreachable} Ready pods answered on podIP:3002: the rollout "
            f"guard cannot compare template {template} with the old one (no Prometheus "
            "fallback); only the service-wide checks protect this rollout"
        )
    since = before.last_transition_time if before and before.status == status else now
    return Condition(type="RolloutGuard", status=status, reason=reason, message=message,
                     last_transition_time=since)  # fmt: skip


def paused_by_annotation(meta: Mapping[str, Any]) -> bool:
    return (meta.get("annotations") or {}).get(keys.PAUSED) == "true"
