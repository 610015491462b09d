"""The rollout watch: from a pod-template change until the rollout is complete and baked,
every `rolloutGuard.interval`, read every pod of the Deployment, judge new against old
(guard/judge.py), and on a confirmed bad or stalled version pause and roll back
(guard/verdict.py, carried out by the Remediator with its write-ahead record).

Pods are read on their own IPs at `rolloutGuard.pods` (default http://podIP:3002); a Ready pod
that does not answer there (a NetworkPolicy, a strict-mTLS mesh) is read from Prometheus
instead, its series labelled by `pod` (guard/pod_series.py), within the VenueService's own
selector and namespace. Status says which (`rolloutGuard.source`), and an Event says when that
changes; when Prometheus has no series for them, status names the label that is missing.

Driven by the service loop between its cycles; the Deployment, its ReplicaSets and pods come
from the watch-fed indexes, so noticing a template change costs no API call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from venue_operator.decide.rollout import WarmUp, rollout_facts
from venue_operator.guard.asking import GuardPrometheus
from venue_operator.guard.judge import (
    GuardLimits,
    GuardState,
    Judgement,
    PodSample,
    RolloutRead,
    Verdict,
    advance,
    old_gone,
)
from venue_operator.guard.pod_metrics import PodTarget
from venue_operator.guard.pod_series import (
    Query,
    from_prometheus,
)
from venue_operator.guard.verdict import decide_guard
from venue_operator.guard.warm_up import warm_up_word
from venue_operator.kube.status_store import StatusStore
from venue_operator.model import keys
from venue_operator.model.observations import WorkloadState
from venue_operator.model.reasons import Reason
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.model.spec import RUNBOOK_PORT, VenueServiceSpec
from venue_operator.model.status import (
    Condition,
    GuardSource,
    RolloutGuardStatus,
    VenueServiceStatus,
)
from venue_operator.observe.cluster import own_view
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Subject
from venue_operator.remediate.remediator import Remediator
from venue_operator.tenancy.policy import Tenancy

log = structlog.get_logger(__name__)

ReadPods = Callable[[Iterable[PodTarget], float, RolloutGuard], Awaitable[tuple[PodSample, ...]]]


def unreachable(port: int) -> str:
    return f"pods unreachable on :{port}"


def reading_prometheus(port: int) -> str:
    return f"{unreachable(port)}; reading Prometheus series by pod"


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
    unreachable: int | None = None  # Ready pods, when none of them could be read either way
    # The fallback: Prometheus (observe/prometheus.py's reader), the operator's
    # --prometheus-url, and the tenant boundaries every query of a spec's keeps within.
    read_series: Query | None = None
    prometheus_url: str | None = None
    tenancy: Tenancy = field(default_factory=Tenancy)
    source: GuardSource = GuardSource.DIRECT  # of the last read that read any pod
    no_stand_in: str = ""  # why Prometheus did not stand in for pods the direct read missed
    port: int = RUNBOOK_PORT  # rolloutGuard.pods.port, as of the last read
    baseline_asked: int = 0  # times Prometheus was asked for this rollout's baseline
    no_baseline: str = ""  # why there is none (yet)
    without_old: bool = False  # no old pod left to compare with, as of the last read
    # The guard's word that the new pods keep P99 past their warm-up (kept after the watch,
    # with when it ended, for as long as its template is current)
    warm_up: WarmUp | None = None
    # between rollouts: what the last tick saw (loop/workload.py guard_marker)
    idle_at: tuple[Any, ...] | None = None

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
            self.state, self.warm_up = None, None
            return
        deployment = found[0]
        self._follow(deployment, workload, spec, now)
        if self.state is None or self.settled:
            return
        pods = [
            target
            for rs in replicasets
            for summary in indexes["pods"].get((self.namespace, rs["name"]), [])
            if not summary.get("deleting")
            and (
                target := PodTarget.of(
                    own_view(summary, spec.deployment.container, spec.service.port)
                )
            )
            is not None
        ]
        seconds = min(spec.probe.timeout, spec.rollout_guard.interval).total_seconds()
        self.port = spec.rollout_guard.pods.port
        direct, _ = await asyncio.gather(
            self.read_pods(pods, seconds, spec.rollout_guard), self._baseline(spec, subject.name)
        )
        samples = await self._stand_in(spec, subject.name, pods, direct)
        ready = [s for s in samples if s.ready]
        blind = bool(ready) and not any(s.reachable for s in ready)
        self.unreachable = len(ready) if blind else None
        await self._follow_source(samples, now)
        await self._say_in_status(now)
        read = RolloutRead(
            now, self.state.new_hash, samples, bool(deployment.get("progress_deadline_exceeded"))
        )
        limits = GuardLimits.from_spec(spec)
        self.state, judgement = advance(self.state, read, limits)
        self.warm_up = warm_up_word(self.state, limits)
        self.without_old = old_gone(self.state, read, limits)
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
            self.source, self.unreachable, self.no_stand_in = GuardSource.DIRECT, None, ""
            self.baseline_asked, self.no_baseline, self.warm_up = 0, "", None
            log.info("rollout_guard.watching", namespace=self.namespace,
                     deployment=deployment["name"], template=new_hash)  # fmt: skip
            return
        if changed and ours:
            self.state, self.warm_up = None, None
        if self.state is None:
            return
        if not deployment.get("complete") or deployment.get("paused"):
            self.complete_since = None
            return
        self.complete_since = self.complete_since or now
        if now - self.complete_since >= spec.remediation.rollback.bake_time:
            log.info("rollout_guard.done", namespace=self.namespace, template=new_hash)
            self.state = None
            if self.warm_up is not None:
                self.warm_up = replace(self.warm_up, until=now)

    async def _stand_in(
        self, spec: VenueServiceSpec, name: str, pods: Sequence[PodTarget],
        samples: tuple[PodSample, ...],
    ) -> tuple[PodSample, ...]:  # fmt: skip
        """The Ready pods that did not answer on their pod IP read from Prometheus instead,
        where it has their series (one that does proves the pod serves: our path is blocked)."""
        unread = [t.name for t, s in zip(pods, samples, strict=True)
                  if t.ip and s.ready and not s.reachable]  # fmt: skip
        self.no_stand_in = ""
        if not unread:
            return samples
        asking = self._asking(spec, name)
        found = await asking.pod_counters(spec.rollout_guard, unread)
        if isinstance(found, str):
            self.no_stand_in = found
            return samples
        if not found:
            self.no_stand_in = await asking.missing_labels()
        return from_prometheus(samples, found)

    def _asking(self, spec: VenueServiceSpec, name: str) -> GuardPrometheus:
        return GuardPrometheus.of(spec, self.namespace, name, self.read_series,
                                  self.prometheus_url, self.tenancy)  # fmt: skip

    async def _baseline(self, spec: VenueServiceSpec, name: str) -> None:
        """The old version's baseline, asked at the watch's first reads (a few tries: a
        Prometheus that cannot answer is no reason to ask it every read)."""
        if self.state is None or self.state.baseline is not None or self.baseline_asked >= 3:
            return
        self.baseline_asked += 1
        found = await self._asking(spec, name).baseline(spec.rollout_guard, self.state.started_at)
        if isinstance(found, str):
            self.no_baseline = found
            log.info("rollout_guard.no_baseline", namespace=self.namespace, reason=found)
        elif self.state is not None:
            self.state, self.no_baseline = replace(self.state, baseline=found), ""

    async def _say_in_status(self, now: datetime) -> None:
        """The watch's condition and `rolloutGuard` in status as soon as they change. A failed
        write never stops the judgement: the next read or cycle writes them again."""
        status = with_guard(self.store.known, self.store.known, self, now)
        try:
            await self.store.save_changes(status)
        except Exception:
            log.warning("rollout_guard.status_not_written", namespace=self.namespace,
                        exc_info=True)  # fmt: skip

    async def _follow_source(self, samples: Sequence[PodSample], now: datetime) -> None:
        """Note where the pods were read; say it once when that changes (not every read)."""
        read = [s for s in samples if s.reachable]
        if not read or self.state is None:
            return  # nothing read either way: the condition says so, the source stands
        from_prometheus = [s for s in read if s.source is GuardSource.PROMETHEUS]
        source = GuardSource.PROMETHEUS if from_prometheus else GuardSource.DIRECT
        if source is self.source:
            return
        self.source = source
        template = self.state.new_hash
        if source is GuardSource.PROMETHEUS:
            ready = sum(1 for s in samples if s.ready)
            message = (f"{reading_prometheus(self.port)} ({len(from_prometheus)} of {ready} "
                       f"Ready pods) "
                       f"to compare template {template} with the old one")  # fmt: skip
            event = EventSpec("Warning", Reason.GUARD_SOURCE_CHANGED, message)
        else:
            message = f"pods answer on :{self.port} again: read directly (template {template})"
            event = EventSpec("Normal", Reason.GUARD_SOURCE_CHANGED, message)
        log.info("rollout_guard.source", namespace=self.namespace, source=source,
                 template=template)  # fmt: skip
        key = f"guard-source/{template}/{source}/{now.timestamp():.0f}"
        await self.remediator.events.post_once(None, event, key)

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
        if self.source is GuardSource.PROMETHEUS:  # the audit trail says what it judged on
            judgement = replace(judgement, reason=f"{judgement.reason} (from Prometheus "
                                f"series by pod: {unreachable(self.port)})")  # fmt: skip
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


GUARD_CONDITION = "RolloutGuard"


def guard_condition(
    watch: RolloutWatch | None, before: Condition | None, now: datetime
) -> Condition | None:
    """`RolloutGuard` in status while a rollout is watched: True while the pods are read, on
    their own IPs (Watching) or from Prometheus (ReadingPrometheus), False (PodsUnreachable)
    when none can be read either way."""
    if watch is None or watch.state is None:
        return None
    template = watch.state.new_hash
    comparing = f"comparing the new pods (template {template}) with the old ones"
    if watch.unreachable is not None:
        status, reason = "False", "PodsUnreachable"
        why = f" ({watch.no_stand_in})" if watch.no_stand_in else ""
        message = (
            f"none of {watch.unreachable} Ready pods answered on podIP:{watch.port} and "
            f"Prometheus did not stand in{why}: the rollout guard cannot compare template "
            f"{template} with the old one; only the service-wide checks protect this rollout"
        )
    elif watch.source is GuardSource.PROMETHEUS:
        status, reason = "True", "ReadingPrometheus"
        message = f"{reading_prometheus(watch.port)}: {comparing}"
    else:
        status, reason, message = "True", "Watching", f"{comparing} on podIP:{watch.port}"
    since = before.last_transition_time if before and before.status == status else now
    return Condition(type=GUARD_CONDITION, status=status, reason=reason, message=message,
                     last_transition_time=since)  # fmt: skip


def guard_status(watch: RolloutWatch | None) -> RolloutGuardStatus | None:
    """`status.rolloutGuard` while a rollout is watched (its message stays the same from read
    to read: it is compared for writes, unlike a condition's)."""
    if watch is None or watch.state is None:
        return None
    if watch.unreachable is not None:
        message = (f"{unreachable(watch.port)} and not read from Prometheus: "
                   f"{watch.no_stand_in or 'no pod IP'}")  # fmt: skip
    elif watch.source is GuardSource.PROMETHEUS:
        message = reading_prometheus(watch.port)
    else:
        message = f"reading each pod on podIP:{watch.port}"
    if watch.no_baseline and watch.without_old:
        message = f"{message}; no baseline of the old version: {watch.no_baseline}"
    return RolloutGuardStatus(template=watch.state.new_hash, source=watch.source,
                              message=message[:1024])  # fmt: skip


def with_guard(
    status: VenueServiceStatus, previous: VenueServiceStatus, watch: RolloutWatch | None,
    now: datetime,
) -> VenueServiceStatus:  # fmt: skip
    """`status` with the watch's condition (in place of the one there, if any; its transition
    time carried on from `previous`) and `rolloutGuard`; both gone between rollouts."""
    before = next((c for c in previous.conditions if c.type == GUARD_CONDITION), None)
    condition = guard_condition(watch, before, now)
    others = [c for c in status.conditions if c.type != GUARD_CONDITION]
    at = next((i for i, c in enumerate(status.conditions) if c.type == GUARD_CONDITION),
              len(others))  # fmt: skip
    conditions = others if condition is None else [*others[:at], condition, *others[at:]]
    return status.model_copy(
        update={"conditions": conditions, "rollout_guard": guard_status(watch)}
    )


def paused_by_annotation(meta: Mapping[str, Any]) -> bool:
    return (meta.get("annotations") or {}).get(keys.PAUSED) == "true"
