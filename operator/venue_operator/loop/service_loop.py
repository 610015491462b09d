"""The loop for one VenueService: every interval, observe -> assess -> decide -> act -> record.

Runs inside the Kopf daemon of that VenueService (cli/handlers.py wires its ports) until
the daemon stops or the VenueService is gone (loop/lifetime.py). Status is written by its
`StatusStore` only; the Remediator orders the writes an action needs. One VenueService per
Deployment: a second one naming the same Deployment is refused and never acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import kopf
import structlog
from pydantic import ValidationError

from venue_operator.decide import gitops, rules
from venue_operator.decide.procedure import decide
from venue_operator.decide.rollout import rollout_facts
from venue_operator.decide.storm import Storm
from venue_operator.guard.watch import RolloutWatch, paused_by_annotation, with_guard
from venue_operator.kube.status_store import (
    StatusStore,
    StatusTaken,
    parse_status,
)
from venue_operator.loop.evaluation import LateSkips, Outcome
from venue_operator.loop.lifetime import StopFlag, VenueServiceGone
from venue_operator.loop.loop_ports import LoopPorts
from venue_operator.loop.ownership import Ownership
from venue_operator.loop.page_delivery import PageDesk
from venue_operator.loop.reports import (
    Reporter,
    alert_condition,
    observe_only_condition,
    report_failure,
    with_condition,
)
from venue_operator.loop.workload import (
    ask_workload,
    claimed_by,
    guard_marker,
    read_workload,
    want_workload,
)
from venue_operator.model.observations import WorkloadState
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import VenueServiceSpec, with_shared_parts
from venue_operator.model.status import VenueServiceStatus
from venue_operator.observe import scalers
from venue_operator.record import telemetry
from venue_operator.record.first_judged import FirstJudged
from venue_operator.record.transitions import EventSpec
from venue_operator.record.write_causes import write_causes
from venue_operator.remediate.ports import Subject
from venue_operator.remediate.remediator import Remediator
from venue_operator.tenancy.policy import clamp, may_act, observe_only
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)
DEFAULT_INTERVAL_S = 15.0


class InvalidSpec(Exception):
    """The spec cannot be read: the only cause of an InvalidSpec Event."""


class ServiceLoop:
    def __init__(
        self, namespace: str, name: str, body: kopf.Body, indexes: Mapping[str, Any],
        ports: LoopPorts,
    ) -> None:  # fmt: skip
        self.namespace, self.name, self.body, self.indexes = namespace, name, body, indexes
        self.ownership = Ownership(self.key, ports.owns, ports.read_status, ports.renewing)
        acts, gitops = self.ownership.acts(ports.acts, ports.gitops)
        ports = replace(ports, events=self.ownership.events(ports.events), acts=acts, gitops=gitops,
                        write_status=self.ownership.writes(ports.write_status))  # fmt: skip
        self.ports = ports
        self.store = StatusStore(ports.write_status, parse_status(body.status),
                                 ports.read_status, body.meta.get("resourceVersion"))  # fmt: skip
        self.remediator = Remediator(ports.acts, ports.events, self.store, gitops=ports.gitops,
                                     fleet=ports.fleet)  # fmt: skip
        self.pages = PageDesk(self.key, ports.page, ports.page_results, ports.events)
        self.spec: VenueServiceSpec | None = None  # the last valid spec
        self._raw_spec: dict[str, Any] | None = None
        self._generation: int | None = None  # of the spec validated last
        self.reporter = Reporter(ports.events, body)  # problems said once until they clear
        self._clamped: tuple[str, ...] = ()  # what the caps changed in the current spec
        self._acts = may_act(namespace, ports.tenancy)
        self._guarded_at = 0.0  # time.monotonic() of the last guard tick
        self._late = LateSkips()
        self.first = FirstJudged(self.key)  # how long until its first judged cycle, on what
        self.watch = self._rollout_watch()

    def _rollout_watch(self) -> RolloutWatch | None:
        ports = self.ports
        return None if ports.read_pods is None else RolloutWatch(
            self.namespace, ports.read_pods, self.remediator, self.store,
            read_series=ports.read_series, prometheus_url=ports.prometheus_url,
            tenancy=ports.tenancy,
        )  # fmt: skip

    def _afresh(self) -> None:
        """Taken over (shards): what this loop held of the service is from before the gap."""
        self.watch, self.reporter = self._rollout_watch(), Reporter(self.ports.events, self.body)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def run(self, stopped: StopFlag, spread: float | None = None) -> None:
        """Until stopped or, with shards, released to another replica (loop/turns.py)."""
        # Spread over the whole interval (1,000 services starting together probe in bursts, and
        # the bursts' loop lag reads as slow probes); a service taken over is due: `spread`.
        first = self._interval() if spread is None else min(self._interval(), spread)
        try:  # what is asked here is let go of below, even if cancelled in the first wait
            with contextlib.suppress(InvalidSpec):  # asked now: one fill, one read for a takeover
                spec = self._spec()
                ask_workload(self.ports.workloads, self.key, self.namespace, spec)
                self.ports.expect_metrics(self.namespace, self.name, spec, self.store.known)
            await stopped.wait(random.uniform(0, first))
            while not stopped and not self.ownership.released:
                started = time.monotonic()
                await self.step()
                await self._wait_guarding(stopped, started)
        finally:
            if self.ports.workloads is not None:
                self.ports.workloads.drop(self.key)
            self.ports.forget_metrics(self.key)
            if self.ports.board is not None:
                self.ports.board.forget(self.namespace, self.name)
            self.ports.alert(None, self.store.known)  # forgets it; the alert expires by endsAt
            telemetry.forget(self.namespace, self.name)

    async def step(self) -> None:
        """One cycle; never raises (the loop must outlive its own bugs)."""
        started = time.monotonic()
        self.first.mark("wait")
        try:
            if not await self.ownership.now(self.store, self._afresh):
                return  # released: `run` ends and lets go of what it read
            self.first.mark("read")  # the stored status, when taken on (loop/ownership.py)
            await self.cycle()
        except InvalidSpec as exc:
            await self.reporter.say_once(
                "InvalidSpec", EventSpec("Warning", Reason.INVALID_SPEC, str(exc))
            )
        except VenueServiceGone:
            log.info("cycle.venueservice_gone", namespace=self.namespace, name=self.name)
        except StatusTaken as exc:  # nothing written or acted on; the next cycle starts from it
            log.warning("cycle.status_taken", namespace=self.namespace, name=self.name,
                        error=str(exc))  # fmt: skip
        except Exception as exc:
            telemetry.failed(self.namespace, self.name)
            log.exception("cycle.failed", namespace=self.namespace, name=self.name)
            await report_failure(self.reporter, self.store, self.key, exc)
        finally:
            telemetry.EVALUATION_SECONDS.observe(time.monotonic() - started)

    async def _wait_guarding(self, stopped: StopFlag, started: float) -> None:
        """Until the next cycle is due; meanwhile the rollout guard's ticks, every
        `rolloutGuard.interval` (a template change is noticed within one); between rollouts,
        only when the guard clock sees something a tick would notice move."""
        while not stopped:
            now = time.monotonic()
            cycle_at = started + self._interval()
            guard = self._guard_interval()
            guard_at = None if guard is None else self._guarded_at + guard
            # the cycle first: guard ticks slower than their interval (unreachable pods under
            # load) would otherwise run back to back and starve the steady loop
            if cycle_at <= now:
                return
            clock, idle = self.ports.guard_clock, self._idle()
            if guard is not None and clock is not None and idle is not None:
                moved = clock.moved(*idle, guard)
                await stopped.wait(cycle_at - now, moved)
                if moved.done() and not moved.cancelled():
                    self._guarded_at = time.monotonic()
                    await self.guard_step()
                continue
            if guard_at is not None and guard_at <= now:
                self._guarded_at = now
                await self.guard_step()
                continue
            wake = cycle_at if guard_at is None else min(cycle_at, guard_at)
            await stopped.wait(max(0.05, wake - now))

    def _idle(self) -> tuple[Callable[[], object], object] | None:
        """What the guard would notice a rollout by and what it saw at its last tick, while
        it is between rollouts and nothing has moved since; None when it ticks on its timer."""
        if self.watch is None or self.watch.state is not None or self.watch.idle_at is None:
            return None
        try:
            spec = self._spec()
        except InvalidSpec:
            return None
        marker, seen = functools.partial(self._marker, spec), self.watch.idle_at
        return (marker, seen) if marker() == seen else None

    def _marker(self, spec: VenueServiceSpec) -> tuple[Any, ...] | None:
        return guard_marker(self.namespace, spec, self.indexes, self.ports.workloads,
                            self.body.meta.get("generation"))  # fmt: skip

    def _guard_interval(self) -> float | None:
        try:
            spec = self._spec()
        except InvalidSpec:
            return None
        if self.watch is None or not spec.rollout_guard.enabled:
            return None
        return spec.rollout_guard.interval.total_seconds()

    async def guard_step(self) -> None:
        """One tick of the rollout watch; never raises (as `step`)."""
        assert self.watch is not None
        try:
            if not self.ownership.still():
                return
            spec = self._spec()
            marker = functools.partial(self._marker, spec)
            seen = self.watch.idle_at if self.watch.state is None else None
            if seen is not None and seen == marker():
                return  # no rollout, and nothing it would notice one by has moved
            if self.body.meta.get("deletionTimestamp") or self._owner(spec) is not None:
                return
            workload, deployment_ref = await self._workload(spec)
            if workload.unreadable:
                return
            subject = self._subject(spec, workload, deployment_ref)
            paused = paused_by_annotation(self.body.meta)
            await self.watch.tick(spec, self.indexes, workload, subject, paused)
            self.watch.idle_at = marker() if self.watch.state is None else None  # as it saw
        except VenueServiceGone:
            log.info("rollout_guard.venueservice_gone", namespace=self.namespace, name=self.name)
        except StatusTaken as exc:
            log.warning("rollout_guard.status_taken", namespace=self.namespace, name=self.name,
                        error=str(exc))  # fmt: skip
        except Exception:
            telemetry.failed(self.namespace, self.name)
            log.exception("rollout_guard.failed", namespace=self.namespace, name=self.name)

    def _interval(self) -> float:
        try:
            return self._spec().probe.interval.total_seconds()
        except InvalidSpec:
            return DEFAULT_INTERVAL_S

    def _spec(self) -> VenueServiceSpec:
        """The validated spec, re-validated only when the spec changed (at 1,000 services,
        validating every cycle was 7% of the operator's CPU). A spec edit moves the object's
        generation (the status subresource keeps status writes out of it): while it stands
        still, even the raw spec is not copied (asked twice a guard tick, every 2 s)."""
        generation = self.body.meta.get("generation")
        if self.spec is not None and generation is not None and generation == self._generation:
            return self.spec
        raw = dict(self.body.spec)
        if self._raw_spec != raw or self.spec is None:
            try:
                valid = with_shared_parts(VenueServiceSpec.model_validate(raw))
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error.get("loc", ()))
                raise InvalidSpec(redact(f"spec cannot be evaluated: {where}: "
                                         f"{error.get('msg')}")[:500]) from None  # fmt: skip
            # The spec is the namespace user's: the admin's caps bound it, and outside the
            # namespaces it may act in, the operator only observes (decide stays pure).
            self.spec, self._clamped = clamp(valid, self.ports.tenancy.caps)
            if not self._acts:
                self.spec = observe_only(self.spec)
            self._raw_spec = raw
        self._generation = generation
        return self.spec

    async def cycle(self) -> None:
        if self.body.meta.get("deletionTimestamp"):
            return  # being deleted (e.g. its namespace is terminating): nothing left to heal
        spec = self._spec()
        self.reporter.cleared("InvalidSpec")
        owner = self._owner(spec)
        if owner is not None:
            await self._refuse_duplicate(spec, owner)
            return
        self.reporter.cleared("DuplicateTarget")
        await self.reporter.missing_permissions(self.ports.missing_permissions)
        await self.reporter.boundaries(self.namespace, self._clamped, self._acts)
        refs: list[dict[str, Any] | None] = []

        async def read() -> WorkloadState:
            state, ref = await self._workload(spec)
            refs.append(ref)
            self.first.mark("workload")
            return state

        generation = self.body.meta.get("generation")
        previous = self.store.known  # the last cycle's: the loop's conditions carry on from it
        reading = asyncio.ensure_future(read())  # awaited beside the probes and the metrics
        try:
            outcome = await self.ports.evaluate(self.namespace, self.name, spec, previous,
                                                reading, generation)  # fmt: skip
            workload, deployment_ref = await reading, refs[0]
        finally:
            reading.cancel()  # evaluating failed: its read is not waited for
        self.first.mark("observe")
        if self._late.skipped(outcome):
            return  # nothing judged: nothing recorded, written, posted or acted on
        telemetry.evaluated(self.namespace, self.name, outcome.assessment.checks)
        self.first.judged()
        await self.reporter.refused(outcome.refused)
        now = outcome.observations.at
        for event in outcome.events:  # the causes first: before the action they lead to
            await self.ports.events.post(None, event)
        status = self.pages.record(spec, previous, outcome.status, outcome.events, now)
        status = observe_only_condition(status, previous, self.namespace, self._acts)
        status = with_guard(status, previous, self.watch, now)
        self.store.known = status

        status = await self._acknowledge_resume(status, now)
        subject = self._subject(spec, workload, deployment_ref)
        status = await self.remediator.finish_in_progress(subject, status, now)
        if scalers.scaled_object_needed(workload, status):
            workload = await self.ports.read_scaler(self.namespace, workload)
        paused = paused_by_annotation(self.body.meta)
        storms = self._storms(spec, outcome, now)
        rollout = rollout_facts(workload, status, self.watch.warm_up if self.watch else None)
        decision = decide(outcome.assessment, rollout, status, spec.remediation, now, paused,
                          storms)  # fmt: skip
        if not self.ownership.still():
            return  # lost to another replica during the cycle: it acts, not this one
        status = await self.remediator.carry_out(subject, status, decision, now)
        alerting = self.ports.alert(spec.notification, status)
        status = alert_condition(spec, status, previous, alerting)
        status = await self.pages.settle(spec, status, previous, now)
        held_by = decision.suppressed_by or decision.params.get("heldBy") or None
        telemetry.service_state(self.namespace, self.name, status, held_by)
        await self.store.save_changes(status)
        self.pages.send_due(spec, self.store.settled, now)
        await self.reporter.alert(alerting)
        self.reporter.cleared_all("EvaluationFailed")
        log.debug("cycle.done", namespace=self.namespace, name=self.name,
                  health=outcome.assessment.health, decision=decision.reason)  # fmt: skip

    def _storms(self, spec: VenueServiceSpec, outcome: Outcome, now: datetime) -> tuple[Storm, ...]:
        """Say this cycle's breaches on the fleet board; the storms around this service."""
        board = self.ports.board
        if board is None:
            return ()
        critical = rules.confirmed_critical(outcome.assessment, *rules.SERVICE_CHECKS)
        return board.report(self.namespace, self.name, spec.depends_on or (), critical, now)

    def _subject(
        self, spec: VenueServiceSpec, workload: WorkloadState, ref: dict[str, Any] | None
    ) -> Subject:
        """What the cycle and the rollout guard act for: the same, so that a rollback by
        either follows the GitOps controller that applies the Deployment."""
        return Subject(self.namespace, self.name, spec, ref, workload.gitops)

    async def _acknowledge_resume(
        self, status: VenueServiceStatus, now: datetime
    ) -> VenueServiceStatus:
        """`venue-operator resume` undid the GitOps suspension: clear it from status."""
        cleared = gitops.acknowledge_resume(status, self.body.meta.get("annotations"))
        if cleared is None or status.gitops is None or status.gitops.suspension is None:
            return status
        suspension = status.gitops.suspension
        event = EventSpec("Normal", Reason.GITOPS_RESUMED, gitops.resumed_message(suspension, now))
        await self.ports.events.post_once(None, event, f"{suspension.correlation_id}/resumed")
        return cleared

    async def _workload(
        self, spec: VenueServiceSpec
    ) -> tuple[WorkloadState, dict[str, Any] | None]:
        why = await want_workload(self.ports.workloads, self.key, self.namespace, spec)
        if why is not None:
            return WorkloadState(found=False, unreadable=why), None
        return read_workload(self.namespace, spec, self.indexes, self.ports.missing_permissions)

    def _owner(self, spec: VenueServiceSpec) -> str | None:
        return claimed_by(self.namespace, self.name, spec, self.indexes)

    async def _refuse_duplicate(self, spec: VenueServiceSpec, owner: str) -> None:
        # the condition's message is the REFUSED column of kubectl get: short
        claimed = f"Deployment {spec.deployment.name} is already watched by VenueService {owner}"
        message = f"{claimed}: this one is refused and never acts; delete one of them"
        status = with_condition(VenueServiceStatus(), self.store.known, "DuplicateTarget",
                                "True", "DeploymentClaimed", claimed)  # fmt: skip
        if write_causes(self.store.written, status):
            await self.store.save(status, "duplicate")
        event = EventSpec("Warning", Reason.DUPLICATE_TARGET, message)
        await self.reporter.say_once("DuplicateTarget", event, key=owner)
