"""The glue, fast: one ServiceLoop and its Remediator driven cycle by cycle through their
ports, with the real pure core (assess, record, decide, ledger) and our own stand-ins for
the cluster: a status store that can refuse writes, a workload writer that records calls
(or crashes, or is refused), Events that are created once by name, a pager. No cluster."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest
import structlog
from kopf._core.intents.stoppers import DaemonStopper
from kubernetes.aio import client
from prometheus_client import REGISTRY

from tests.unit.builders import HEALTHY_FULL, HEALTHY_METRICS, metrics
from tests.unit.test_workload_watch import Cluster, pod, replicaset, started
from tests.unit.waiting import eventually
from venue_operator.act import ActError, ActResult
from venue_operator.act.migration import job_name
from venue_operator.fleet.rate import FleetRate
from venue_operator.kube import calls
from venue_operator.kube.status_store import parse_status
from venue_operator.loop import reports, service_loop
from venue_operator.loop.evaluation import Outcome, judge
from venue_operator.loop.lifetime import Lifetime, VenueServiceGone
from venue_operator.loop.loop_ports import LoopPorts
from venue_operator.loop.service_loop import ServiceLoop
from venue_operator.loop.turns import Presence, depends_on, take_turns
from venue_operator.loop.workload import guard_marker
from venue_operator.model.observations import (
    GitOpsRef,
    Observations,
    ProbeFailure,
    ProbeResult,
    Reading,
    TenantRate,
)
from venue_operator.model.pages import Page
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import Level, VenueServiceStatus
from venue_operator.paging.webhook import Delivery
from venue_operator.record import first_judged
from venue_operator.record.transitions import EventSpec
from venue_operator.tenancy.policy import Caps, Tenancy

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NS, NAME = "shop", "venue-service"
SPEC = {
    "deployment": {"name": NAME},
    "probe": {"interval": "1s", "timeout": "500ms"},
    "confirmation": {"breaches": 2, "recoveries": 2, "minRequestRate": 1},
    "remediation": {"rollback": {"bakeTime": "5s"}},
    "notification": {"webhookSecretRef": {"name": "pager", "key": "url"}},
}
ERRORS = metrics(error_rate=Reading.of(0.2))


class Crash(BaseException):
    """The process dies here (SIGKILL): nothing after it runs, nothing catches it."""


def forbidden() -> ActError:
    """What the Acts port raises when the API server refuses (act/writer.py)."""
    exc = client.ApiException(status=403, reason="Forbidden")
    message = (
        'deployments.apps "venue-service" is forbidden: User "system:serviceaccount:x:y" '
        'cannot patch resource "deployments"'
    )
    exc.body = json.dumps({"message": message})
    return ActError(calls.refusal(exc), exc.status)


@dataclass
class FakeActs:
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    crash_next: bool = False
    crash_after_next: bool = False
    refuse: bool = False
    outcomes: list[str | None] = field(default_factory=list)  # migration_outcome answers

    async def _do(self, what: str, *args: Any) -> ActResult:
        if self.crash_next:
            self.crash_next = False
            raise Crash
        if self.refuse:
            raise forbidden()
        if (what, args) in self.calls:  # idempotent, as every act is
            return ActResult(False, f"{what} found done")
        self.calls.append((what, args))
        if self.crash_after_next:  # the write landed; the process died before recording it
            self.crash_after_next = False
            raise Crash
        return ActResult(True, f"{what} done")

    async def roll_back(self, *args: Any) -> ActResult:
        return await self._do("roll_back", *args)

    async def pause_rollout(self, *args: Any) -> ActResult:
        return await self._do("pause_rollout", *args)

    async def run_migration(self, namespace: str, cronjob: str, rid: str) -> ActResult:
        done = await self._do("run_migration", namespace, cronjob, rid)
        return replace(done, job=job_name(cronjob, rid))  # as act/migration.py names it

    async def migration_outcome(self, namespace: str, job: str) -> str | None:
        return self.outcomes.pop(0) if self.outcomes else None

    async def set_circuit(self, *args: Any) -> ActResult:
        return await self._do("set_circuit", *args)

    async def set_count(self, *args: Any, **kwargs: Any) -> ActResult:
        return await self._do("set_count", *args, *kwargs.values())


@dataclass
class FakeEvents:
    """Transition Events are appended; named ones are created once, as the API does (409)."""

    posted: list[tuple[str, EventSpec]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    async def post(self, ref: dict[str, Any] | None, event: EventSpec) -> None:
        self.posted.append((ref["kind"] if ref else "VenueService", event))

    async def post_once(self, ref: dict[str, Any] | None, event: EventSpec, key: str) -> bool:
        kind = ref["kind"] if ref else "VenueService"
        name = f"{kind}/{key}/{event.reason}"
        if name in self.names:
            return False
        self.names.add(name)
        self.posted.append((kind, event))
        return True

    def reasons(self, kind: str = "VenueService") -> list[Reason]:
        return [e.reason for k, e in self.posted if k == kind]


@dataclass
class World:
    """The cluster as one VenueService sees it, with a clock that moves a second a cycle."""

    acts: FakeActs = field(default_factory=FakeActs)
    events: FakeEvents = field(default_factory=FakeEvents)
    stored: dict[str, Any] = field(default_factory=dict)  # status as the API holds it
    refuse_writes: int = 0
    fenced: bool = False  # status writes carry the resourceVersion they read (kube/calls.py)
    version: int = 1  # the object's resourceVersion
    on_write: Callable[[], None] | None = None  # called after each stored write
    gone: bool = False  # the VenueService was deleted: a status write finds nothing
    gone_writes: int = 0  # status writes that found it gone
    pages: list[Page] = field(default_factory=list)  # every page the webhook was sent
    webhook_down: bool = False  # the receiver answers 500
    deliveries: list[Delivery] = field(default_factory=list)  # not yet handed to the loop
    fleet: FleetRate | None = None  # the operator-wide action rate, shared between Worlds
    now: datetime = T0
    metrics: Any = HEALTHY_METRICS
    health: ProbeResult = field(default_factory=lambda: ProbeResult(status_code=200))
    full_health: ProbeResult = HEALTHY_FULL
    template: str = "bbb"  # the Deployment's current pod-template-hash
    spec: dict[str, Any] = field(default_factory=lambda: dict(SPEC))
    claims: list[dict[str, Any]] = field(default_factory=list)
    hpas: list[dict[str, Any]] = field(default_factory=list)  # HPA index summaries
    replicas: int = 3
    failing: bool = False
    alert_problem: EventSpec | None = None  # what the Alertmanager sink reports
    alerted: list[tuple[Any, VenueServiceStatus]] = field(default_factory=list)
    refused: tuple[str, ...] = ()  # what the evaluation's tenant boundaries refused
    tenancy: Tenancy = field(default_factory=lambda: Tenancy(caps=Caps(
        min_cooldown=timedelta(0), min_probe_interval=timedelta(0))))  # fmt: skip
    # pod-template-hash -> (revision, created): the Deployment's ReplicaSets
    revisions: dict[str, tuple[int, datetime]] = field(default_factory=lambda: {
        "aaa": (1, T0 - timedelta(days=1)), "bbb": (2, T0 - timedelta(minutes=2))})  # fmt: skip
    reads: int = 0  # status reads (a loop taking the service on)
    evaluated: int = 0  # cycles that got as far as the evaluation

    async def write(self, body: dict[str, Any], resource_version: str | None) -> str | None:
        if self.gone:
            self.gone_writes += 1
            raise VenueServiceGone
        if self.refuse_writes:
            self.refuse_writes -= 1
            raise client.ApiException(status=422, reason="Invalid")
        if self.fenced and resource_version != str(self.version):
            raise client.ApiException(status=422, reason="Unprocessable Entity")  # test op
        self.stored = json.loads(json.dumps(body))  # what a real API hands back
        self.version += 1
        if self.on_write is not None:
            self.on_write()
        return str(self.version) if self.fenced else None

    async def read(self) -> tuple[dict[str, Any], str]:
        self.reads += 1
        return json.loads(json.dumps(self.stored)), str(self.version)

    async def evaluate(
        self, ns: str, name: str, spec: VenueServiceSpec, stored: VenueServiceStatus,
        workload: Any, generation: int | None,
    ) -> Outcome:  # fmt: skip
        self.evaluated += 1
        if self.failing:
            raise RuntimeError("probe exploded")
        if inspect.isawaitable(workload):
            workload = await workload
        obs = Observations(self.now, self.health, self.full_health, self.metrics, workload)
        return replace(judge(obs, spec, stored, generation), refused=self.refused)

    def indexes(self) -> dict[str, Any]:
        if self.template not in self.revisions:  # a rollout: the controller's new ReplicaSet
            self.revisions[self.template] = (max(n for n, _ in self.revisions.values()) + 1,
                                              self.now)  # fmt: skip
        rs = [{"name": f"{NAME}-{h}", "deployment": NAME, "revision": n, "hash": h,
               "created": created.isoformat(), "migration": None, "backward_compatible": False}
              for h, (n, created) in self.revisions.items()]  # fmt: skip
        deployment = {
            "name": NAME, "uid": "u-1", "replicas": self.replicas, "paused": False, "ready": 3,
            "revision": self.revisions[self.template][0], "rolled_back_to": None,
            "revision_history_limit": 10,
        }  # fmt: skip
        return {
            "deployments": {(NS, NAME): [deployment]},
            "replicasets": {(NS, NAME): rs},
            "pods": {},
            "jobs": {},
            "venueservices": {(NS, NAME): self.claims},
            "horizontalpodautoscalers": {(NS, NAME): self.hpas},
        }

    def loop(
        self, name: str = NAME, owns: Callable[[str], int | None] | None = None
    ) -> ServiceLoop:
        """A fresh loop, as after a (re)start: it knows only what the API holds."""
        body = kopf.Body({"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                          "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                                       "generation": 1, "resourceVersion": str(self.version)},
                          "spec": self.spec, "status": self.stored})  # fmt: skip
        ports = LoopPorts(
            evaluate=self.evaluate,
            acts=self.acts,
            events=self.events,
            write_status=self.write,
            read_status=self.read if self.fenced else None,
            owns=owns,
            page=self.send_pages,
            page_results=self.page_results,
            tenancy=self.tenancy,
            alert=self.alert,
            fleet=self.fleet,
        )
        return ServiceLoop(NS, name, body, self.indexes(), ports)

    def send_pages(self, notification: Any, pages: list[Page]) -> None:
        for page in pages:
            self.pages.append(page)
            error = "the receiver answered 500" if self.webhook_down else None
            self.deliveries.append(Delivery(page.key, error))
            if error:
                return

    def page_results(self) -> list[Delivery]:
        taken, self.deliveries = self.deliveries, []
        return taken

    def alert(self, notification: Any, status: VenueServiceStatus) -> EventSpec | None:
        self.alerted.append((notification, status))
        return self.alert_problem

    async def cycles(self, loop: ServiceLoop, n: int) -> None:
        for _ in range(n):
            await loop.step()
            self.now += timedelta(seconds=1)
            loop.indexes = self.indexes()

    def status(self) -> VenueServiceStatus:
        return parse_status(self.stored)

    def history(self, action: str) -> list[Any]:
        return [r for r in self.status().history if r.action == action]


def pages_saying(world: World, reason: Reason) -> list[Page]:
    """Pages sent for `reason`: as their own, or folded into the incident's waiting page."""
    return [p for p in world.pages if p.reason == reason or f"then {reason}: " in p.message]


async def healthy_with_known_good(world: World) -> ServiceLoop:
    loop = world.loop()
    await world.cycles(loop, 8)  # past the 5 s bake
    assert world.status().healthy_templates == ["bbb"]
    return loop


async def bad_rollout(world: World, loop: ServiceLoop) -> None:
    world.template, world.metrics = "ccc", ERRORS
    loop.indexes = world.indexes()


async def test_killed_between_the_record_and_the_write_rolls_back_once_after_restart() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    world.acts.crash_next = True
    with pytest.raises(Crash):
        await world.cycles(loop, 5)
    (pending,) = world.history("RollBack")
    assert pending.result == "InProgress" and world.acts.calls == []  # written ahead, not done
    restarted = world.loop()
    await world.cycles(restarted, 1)
    assert [c[0] for c in world.acts.calls] == ["roll_back"]
    assert world.acts.calls[0][1][2] == "bbb"  # to the known-good template
    (done,) = world.history("RollBack")
    assert done.result == "Succeeded" and done.correlation_id == pending.correlation_id
    assert world.events.reasons().count(Reason.ROLLED_BACK) == 1
    assert world.events.reasons("Deployment").count(Reason.ROLLED_BACK) == 1


async def test_a_refused_status_write_after_the_act_posts_its_events_once() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 2)  # confirmed: write-ahead, then the rollback and its Events
    world.refuse_writes = 4
    await world.cycles(loop, 6)
    assert world.events.reasons().count(Reason.ROLLED_BACK) == 1
    assert len([c for c in world.acts.calls if c[0] == "roll_back"]) == 1
    assert world.history("RollBack")[0].result == "Succeeded"


async def test_two_operators_on_one_service_never_lose_the_others_rollback() -> None:
    """A peering overlap (or a replica that took the service over): both loops read the same
    status; the one that rolls back writes first. The other's writes are fenced: it adopts
    the stored status instead of replacing it with its own older view (unfenced, it rolled
    back a second time: its view held no record of the first)."""
    world = World(fenced=True)
    first = await healthy_with_known_good(world)
    second = world.loop()  # read the same status, at the same version
    await bad_rollout(world, first)
    await world.cycles(first, 6)
    assert [c[0] for c in world.acts.calls] == ["roll_back"]
    for _ in range(6):  # both loops on, interleaved
        await world.cycles(second, 1)
        await world.cycles(first, 1)
    (rolled_back,) = world.history("RollBack")
    assert rolled_back.result == "Succeeded" and world.status().rolled_back_templates == ["ccc"]
    assert [c[0] for c in world.acts.calls] == ["roll_back"]  # once
    assert second.store.written.rolled_back_templates == ["ccc"]  # adopted


TAKEN = "venue_operator_status_taken_total"


async def test_a_shard_skips_what_it_does_not_own_and_takes_over_from_status() -> None:
    """Two replicas with shards (fleet/membership.py): the one that does not own the service
    writes and acts on nothing; handed the service, it starts from what is stored (the
    other's rollback), not from its own stale view, so it needs no fenced write to learn it."""
    world = World(fenced=True)
    owner = {"first": True}
    first = world.loop(owns=lambda key: 1 if owner["first"] else None)
    await world.cycles(first, 8)
    second = world.loop(owns=lambda key: None if owner["first"] else 1)
    await bad_rollout(world, first)
    version = world.version
    await world.cycles(second, 3)
    assert world.version == version and world.acts.calls == []  # not its own: untouched
    await world.cycles(first, 6)
    assert [c[0] for c in world.acts.calls] == ["roll_back"]
    owner["first"] = False  # handed over (a member joined, or the first one's Lease lapsed)
    version, taken = world.version, REGISTRY.get_sample_value(TAKEN)
    await world.cycles(first, 2)
    assert world.version == version  # the first writes nothing any more
    await world.cycles(second, 6)
    assert [c[0] for c in world.acts.calls] == ["roll_back"]  # not again
    assert second.store.written.rolled_back_templates == ["ccc"]
    assert REGISTRY.get_sample_value(TAKEN) == taken  # reloaded, never fenced off


async def test_a_shard_that_loses_its_service_after_the_write_ahead_record_does_not_act() -> None:
    """Paused between recording a rollback ahead and making it, the replica wakes to find
    the service another's: the workload write itself is refused (loop/ownership.py); the
    new owner carries the recorded rollback out, once."""
    world = World(fenced=True)
    owner = {"first": True}
    first = world.loop(owns=lambda key: 1 if owner["first"] else None)
    second = world.loop(owns=lambda key: None if owner["first"] else 2)
    await world.cycles(first, 8)

    def lose_it_once_recorded() -> None:
        if any(r.result == "InProgress" for r in world.history("RollBack")):
            owner["first"] = False

    world.on_write = lose_it_once_recorded
    await bad_rollout(world, first)
    await world.cycles(first, 4)
    (pending,) = world.history("RollBack")
    assert pending.result == "InProgress" and world.acts.calls == []  # recorded, not made
    world.on_write = None
    await world.cycles(second, 3)
    assert [c[0] for c in world.acts.calls] == ["roll_back"]
    (done,) = world.history("RollBack")
    assert done.result == "Succeeded" and done.correlation_id == pending.correlation_id


async def test_a_service_taken_on_again_says_its_problems_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a loop held in memory is from before a gap in which another replica ran the
    service (and may have seen the problem clear): taken on again, it says it anew."""
    seconds = itertools.count(1_800_000_000, 60)  # an Event's name has its second in it
    monkeypatch.setattr(reports, "time", SimpleNamespace(time=lambda: next(seconds)))
    world = World(fenced=True)
    epoch: dict[str, int | None] = {"now": 1}
    loop = world.loop(owns=lambda key: epoch["now"])
    world.failing = True
    await world.cycles(loop, 3)
    assert world.events.reasons().count(Reason.EVALUATION_FAILED) == 1  # said once
    epoch["now"] = None
    await world.cycles(loop, 2)
    epoch["now"] = 2  # taken on again, in a later epoch
    await world.cycles(loop, 3)
    assert world.events.reasons().count(Reason.EVALUATION_FAILED) == 2


async def test_a_service_has_a_loop_only_while_this_replica_owns_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shards (loop/turns.py): while another member runs the service there is no loop, only
    the fleet board's count; a change of members wakes it at once, and the loop built then
    reloads what is stored, evaluates within the take-over spread (not a whole interval),
    and ends at its next cycle once the service is another's."""
    # the first cycle's jitter at its longest: a whole interval, unless taken over
    monkeypatch.setattr(service_loop.random, "uniform", lambda low, high: high)
    world = World(fenced=True)
    world.spec = {**world.spec, "dependsOn": ["orders-db"]}  # a 1 s interval
    epoch: dict[str, int | None] = {"now": None}

    class Members:  # fleet/membership.py's Membership, as the turns see it
        def __init__(self) -> None:
            self.event = asyncio.Event()

        def owns(self, key: str) -> bool:
            return epoch["now"] is not None

        def changed(self) -> Awaitable[object]:
            return self.event.wait()

        def change(self, to: int | None) -> None:
            epoch["now"] = to
            self.event.set()
            self.event = asyncio.Event()

    members, built, presented = Members(), [], []

    def build() -> ServiceLoop:
        built.append(world.loop(owns=lambda key: epoch["now"]))
        return built[-1]

    stopper = DaemonStopper()
    lifetime = Lifetime(stopper.async_waiter, asyncio.Event())
    presence = Presence()
    turning = asyncio.create_task(take_turns(
        f"{NS}/{NAME}", members, build, lifetime, lambda: presented.append(1), spread=0.05,
        presence=presence,
    ))  # fmt: skip
    await eventually("counted on the board", lambda: presented)
    assert built == [] and world.reads == 0  # another's: no loop, no read
    presence.recount()  # the replica's recount (one task for every waiting service)
    assert len(presented) == 2
    presented.clear()
    members.change(1)  # this replica's now: woken long before the 20 s recount
    evaluated = world.evaluated
    await eventually(
        "a loop built and evaluating within the 50 ms spread",
        lambda: built and world.evaluated > evaluated,
        within=0.5,
    )
    assert len(built) == 1 and world.reads == 1  # the stored status, read once on taking it
    members.change(None)
    await eventually("the loop ended, counted again", lambda: len(presented) == 1)
    assert len(built) == 1  # the loop ended at its next cycle; the service waits again
    evaluated = world.evaluated
    await asyncio.sleep(1.1)  # over an interval: nothing runs it here
    assert world.evaluated == evaluated
    members.change(2)
    await eventually("a second loop, reading status", lambda: len(built) == 2 and world.reads == 2)
    presence.recount()  # its own now: not counted as another's
    assert len(presented) == 1
    stopper.set()
    await asyncio.wait_for(turning, 2)


async def test_a_loop_asks_for_its_workload_and_metrics_before_its_first_cycles_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loop starting (a takeover's, a replica's start) asks the workload watch for its
    Deployment's objects and registers its metrics at once, not at its first cycle: the
    loops taking services on together are filled in by one list of their namespace, and
    read by one Prometheus read, while they wait (at 5,000 over 4, each first cycle asked
    on its own). Kopf cancels a deleted VenueService's daemon a few turns after its stop
    flag: a loop cancelled in that first wait keeps neither its Pods nor its target."""
    monkeypatch.setattr(service_loop.random, "uniform", lambda low, high: 60.0)  # the wait
    world = World()
    cluster = Cluster(("replicasets", replicaset(NAME, "bbb")), ("pods", pod(NAME, "bbb", 1)))
    kept = await started(cluster)
    loop = world.loop()
    expected: list[tuple[str, str]] = []
    forgotten: list[str] = []
    loop.ports = replace(
        loop.ports,
        workloads=kept,
        forget_metrics=forgotten.append,
        expect_metrics=lambda ns, name, spec, status: expected.append((ns, name)),
    )
    running = asyncio.create_task(loop.run(Lifetime(DaemonStopper().async_waiter,
                                                    asyncio.Event())))  # fmt: skip
    try:
        await asyncio.sleep(0)  # the loop starts, and asks at once
        assert expected == [(NS, NAME)]  # its metrics, in the next read (observe/batcher.py)
        await eventually("filled in during the wait", lambda: kept.ready(loop.key), within=5)
        assert kept.kept["pods"].count() == 1 and world.evaluated == 0  # no cycle yet
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert kept.kept["pods"].count() == 0 and forgotten == [loop.key]
    finally:
        await kept.stop()


def test_a_service_another_member_runs_is_counted_with_the_dependencies_it_names() -> None:
    assert depends_on({"dependsOn": ["orders-db", "cache"]}) == ("orders-db", "cache")
    assert depends_on({"dependsOn": ["Not A Name"]}) == ()  # its loop would refuse the spec
    assert depends_on({"dependsOn": [f"db-{i}" for i in range(9)]}) == ()  # more than 8 too
    assert depends_on({}) == () and depends_on(None) == ()


def test_a_spec_is_read_again_only_when_its_generation_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asked twice a guard tick: while the generation stands still not even the raw spec is
    copied; an edit (a new generation) is validated and used at once."""
    loop = World().loop()
    validated = []
    real = service_loop.VenueServiceSpec.model_validate
    monkeypatch.setattr(service_loop.VenueServiceSpec, "model_validate",
                        lambda raw: validated.append(1) or real(raw))  # fmt: skip
    first = loop._spec()
    assert all(loop._spec() is first for _ in range(5)) and len(validated) == 1
    raw = dict(loop.body)
    edited = {**raw["spec"], "probe": {"interval": "7s", "timeout": "500ms"}}
    loop.body = kopf.Body({**raw, "spec": edited,
                           "metadata": {**raw["metadata"], "generation": 2}})  # fmt: skip
    assert loop._spec().probe.interval == timedelta(seconds=7) and len(validated) == 2
    assert loop._spec().probe.interval == timedelta(seconds=7) and len(validated) == 2


async def test_a_failed_write_is_retried_from_what_was_last_written() -> None:
    world = World()
    loop = world.loop()
    world.refuse_writes = 1
    await world.cycles(loop, 1)  # the first status write is refused
    assert world.stored.get("health") is None or "lastError" in world.stored
    await world.cycles(loop, 1)
    assert world.status().health is not None and world.status().last_error is None


async def test_a_refused_rollback_escalates_at_once_and_pages_once() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    world.acts.refuse = True
    await world.cycles(loop, 8)
    failed, held = world.history("RollBack")  # then the cooldown holds it, said once
    assert (failed.result, held.result) == ("Failed", "Suppressed")
    assert "403 Forbidden" in failed.reason
    assert 'cannot patch resource "deployments"' in failed.reason
    reasons = world.events.reasons()
    assert reasons.count(Reason.REMEDIATION_FAILED) == 1 and reasons.count(Reason.ESCALATED) == 1
    assert len(pages_saying(world, Reason.ESCALATED)) == 1, world.pages


async def test_the_escalation_and_its_page_say_the_impact() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    world.metrics = replace(ERRORS, tenants=(TenantRate("tenant-b", 5.0, 2.5),))
    world.acts.refuse = True
    await world.cycles(loop, 8)
    (escalated,) = [e for _, e in world.events.posted if e.reason is Reason.ESCALATED]
    assert "; impact: ~" in escalated.message and "tenant-b" in escalated.message
    (page,) = [p for p in world.pages if escalated.message in p.message]
    assert page.message.endswith(f"{Reason.ESCALATED}: {escalated.message}")
    incident = world.status().incident
    assert incident is not None and incident.impact is not None
    assert incident.impact.top_tenants[0].tenant == "tenant-b"


async def test_following_a_migration_job_to_its_end() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    world.full_health = ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503,
                                    checks={"database": "ok", "redis": "ok",
                                            "migrations": "pending"})  # fmt: skip
    world.acts.outcomes = [None, None, "Succeeded"]
    await world.cycles(loop, 3)
    (running,) = world.history("RunMigration")
    assert running.result == "InProgress" and running.inputs["job"].startswith("venue-migrate-")
    await world.cycles(loop, 3)
    (done,) = world.history("RunMigration")
    assert done.result == "Succeeded"
    assert world.events.reasons().count(Reason.MIGRATION_SUCCEEDED) == 1
    assert [c[0] for c in world.acts.calls].count("run_migration") == 1


async def test_a_migration_that_never_finishes_times_out_as_failed() -> None:
    world = World()
    world.spec = {**SPEC, "remediation": {**SPEC["remediation"], "migration": {"timeout": "3s"}}}
    loop = await healthy_with_known_good(world)
    world.full_health = ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503,
                                    checks={"database": "ok", "redis": "ok",
                                            "migrations": "pending"})  # fmt: skip
    await world.cycles(loop, 8)
    (record,) = world.history("RunMigration")[:1]
    assert record.result == "Failed"
    (failed,) = [e for _, e in world.events.posted if e.reason is Reason.MIGRATION_FAILED]
    assert "(timed out)" in failed.message


async def test_a_guardrail_holding_an_action_is_said_once() -> None:
    world = World()
    world.spec = {**SPEC, "remediation": {"maxActionsPerHour": 0, "rollback": {"bakeTime": "5s"}}}
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 10)
    reasons = world.events.reasons()
    assert reasons.count(Reason.ESCALATED) == 1, reasons  # budget used up: never silent
    assert reasons.count(Reason.REMEDIATION_SUPPRESSED) == 1, reasons
    assert world.acts.calls == []


async def test_a_restart_mid_incident_keeps_it_and_pages_nothing_new() -> None:
    world = World()
    world.spec = {**SPEC, "remediation": {"mode": "Off", "rollback": {"bakeTime": "5s"}}}
    loop = await healthy_with_known_good(world)
    world.metrics = ERRORS  # incident 1
    await world.cycles(loop, 4)
    world.metrics = HEALTHY_METRICS
    await world.cycles(loop, 4)
    assert world.status().incident is not None and world.status().incident.resolved_at
    world.metrics = ERRORS  # incident 2
    await world.cycles(loop, 4)
    incident = world.status().incident
    assert incident is not None and incident.resolved_at is None
    assert "resolvedAt" not in world.stored["incident"]
    pages = len(world.pages)
    for _ in range(3):  # restarts
        await world.cycles(world.loop(), 3)
    after = world.status().incident
    assert after is not None and after.id == incident.id and after.resolved_at is None
    assert len(world.pages) == pages


async def test_last_error_is_cleared_by_the_next_good_cycle() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    world.failing = True
    await world.cycles(loop, 3)
    assert world.stored["lastError"]["reason"] == "RuntimeError"
    assert world.events.reasons().count(Reason.EVALUATION_FAILED) == 1
    assert Reason.INVALID_SPEC not in world.events.reasons()
    world.failing = False
    await world.cycles(loop, 1)
    assert "lastError" not in world.stored


async def test_cycles_the_operator_probed_late_are_not_judged_three_in_a_row() -> None:
    """A probe timed out by this replica's own lagging loop says nothing of the service:
    the cycle writes, posts and counts nothing (judging it unknown and back wrote status
    every cycle on a saturated replica); the fourth in a row is judged, unknown (a streak
    towards unknown from a calm check: not written until confirmed, record/transitions.py)."""
    world = World()
    loop = await healthy_with_known_good(world)
    labels = {"namespace": NS, "name": NAME}

    def evaluations() -> float:
        return REGISTRY.get_sample_value("venue_operator_evaluations_total", labels) or 0.0

    def skipped() -> float:
        return REGISTRY.get_sample_value(
            "venue_operator_cycles_skipped_total", {"reason": "operator_late"}) or 0.0  # fmt: skip

    version, posted, counted, skips = (
        world.version,
        world.events.reasons(),
        evaluations(),
        skipped(),
    )
    world.health = ProbeResult(ProbeFailure.OPERATOR_LATE, "not judged: ran 0.9s late")
    await world.cycles(loop, 3)
    assert (world.version, world.events.reasons()) == (version, posted), "nothing written"
    assert (evaluations(), skipped()) == (counted, skips + 3)
    await world.cycles(loop, 1)  # the fourth: judged, the probe unknown
    assert world.version == version and evaluations() == counted + 1
    health = next(c for c in loop.store.known.checks if c.name == "health")
    assert health.observed is Level.UNKNOWN
    world.health = ProbeResult(status_code=200)
    await world.cycles(loop, 1)
    world.health = ProbeResult(ProbeFailure.OPERATOR_LATE, "not judged: ran 0.9s late")
    await world.cycles(loop, 1)  # a judged cycle between: the count starts again
    assert (evaluations(), skipped()) == (counted + 2, skips + 4)


async def test_a_loops_first_judged_cycle_is_timed_once_with_where_it_waited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """How long a service taken on waits for its first judged cycle, and on what (the status
    read, the workload, the probes and metrics): late-skipped cycles are not judged ones, and
    only the first judged cycle of a loop is counted."""
    world = World(fenced=True)  # with shards: the loop reads the stored status first
    logged = structlog.testing.CapturingLogger()
    monkeypatch.setattr(first_judged, "log", logged)
    judged = "venue_operator_first_judged_seconds_count"
    before = REGISTRY.get_sample_value(judged) or 0.0
    loop = world.loop(owns=lambda key: 1)
    world.health = ProbeResult(ProbeFailure.OPERATOR_LATE, "not judged: ran 0.9s late")
    await world.cycles(loop, 2)
    assert REGISTRY.get_sample_value(judged) == before  # skipped late: not judged yet
    world.health = ProbeResult(status_code=200)
    await world.cycles(loop, 3)
    assert REGISTRY.get_sample_value(judged) == before + 1
    [first] = [c.kwargs for c in logged.calls if c.args == ("loop.first_judged",)]
    assert first["service"] == loop.key
    assert {"wait_s", "read_s", "workload_s", "observe_s"} <= set(first)
    assert first["after_s"] >= max(first[k] for k in ("wait_s", "read_s", "workload_s"))


async def test_the_workload_is_read_beside_the_probes_and_the_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A service taken over waited for its Pods and ReplicaSets (the workload watch's fill),
    then for its probes and metrics: now the probes go out while the fill is under way, and
    the cycle is judged with the workload once it is read."""
    world = World()
    loop = world.loop()
    filled, order, failed = asyncio.Event(), list[str](), list[str]()
    monkeypatch.setattr(service_loop.telemetry, "failed", lambda ns, name: failed.append(name))

    async def want(*args: Any) -> None:
        await filled.wait()
        order.append("workload read")

    async def evaluate(*args: Any) -> Outcome:
        order.append("observing")
        filled.set()  # the fill ends while the probes are out
        return await world.evaluate(*args)

    monkeypatch.setattr(service_loop, "want_workload", want)
    loop.ports = replace(loop.ports, evaluate=evaluate)
    async with asyncio.timeout(5):  # read first, then observed: the fill would wait forever
        await loop.step()
    assert order == ["observing", "workload read"]
    assert world.evaluated == 1 and failed == []
    assert loop.store.known.health is not None


async def test_a_deleted_venueservice_ends_its_cycle_quietly() -> None:
    """Its status write finds it gone (loop/lifetime.py): not counted as an error, no
    EvaluationFailed, no lastError written after it (the write would find nothing again)."""
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)  # the next cycles have status to write
    world.gone = True
    labels = {"namespace": NS, "name": NAME}

    def errors() -> float:
        return REGISTRY.get_sample_value("venue_operator_evaluation_errors_total", labels) or 0.0

    before = errors()
    await world.cycles(loop, 2)
    assert world.gone_writes >= 2  # each cycle tried its write and found the service gone
    assert errors() == before
    assert Reason.EVALUATION_FAILED not in world.events.reasons()


async def test_an_invalid_spec_is_said_once_and_nothing_else() -> None:
    world = World()
    world.spec = {**SPEC, "thresholds": {"errorRatePercent": {"warning": 9, "critical": 5}}}
    loop = world.loop()
    await world.cycles(loop, 5)
    assert world.events.reasons() == [Reason.INVALID_SPEC]
    assert world.stored == {}


async def test_the_second_venueservice_on_a_deployment_is_refused_and_never_acts() -> None:
    world = World()
    world.claims = [{"name": NAME, "created": "2026-11-27T10:00:00Z"},
                    {"name": "twin", "created": "2026-11-27T11:00:00Z"}]  # fmt: skip
    twin = world.loop("twin")
    world.template, world.metrics = "ccc", ERRORS
    await world.cycles(twin, 6)
    assert world.acts.calls == []
    assert world.events.reasons() == [Reason.DUPLICATE_TARGET]
    (condition,) = world.status().conditions
    # its message is the `Refused` printer column; gone once the first one is
    assert condition.type == "DuplicateTarget" and condition.message == (
        "Deployment venue-service is already watched by VenueService venue-service"
    )
    del world.claims[0]  # the first one is deleted
    await world.cycles(twin, 1)
    status = world.status()
    assert "DuplicateTarget" not in [c.type for c in status.conditions] and status.health


async def test_held_back_while_critical_says_why_once() -> None:
    world = World()
    world.spec = {**SPEC, "remediation": {"mode": "Off", "rollback": {"bakeTime": "5s"}}}
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 8)
    held = [e for _, e in world.events.posted if e.reason is Reason.REMEDIATION_HELD]
    assert len(held) == 1 and "mode Off" in held[0].message


# --- tenant boundaries (#12) ----------------------------------------------------------


async def test_an_over_cap_spec_is_clamped_and_said_once() -> None:
    world = World(tenancy=Tenancy(caps=Caps(max_replicas=5, max_actions_per_hour=2,
                                            min_cooldown=timedelta(seconds=30))))  # fmt: skip
    world.spec = {
        **SPEC,
        "remediation": {
            "maxActionsPerHour": 100,
            "scale": {"maxReplicas": 1000},
            "cooldowns": {"scale": "1s"},
        },
    }
    loop = world.loop()
    await world.cycles(loop, 4)
    clamped = [e for _, e in world.events.posted if e.reason is Reason.SPEC_CLAMPED]
    assert len(clamped) == 1
    assert "remediation.scale.maxReplicas 1000 -> 5" in clamped[0].message
    assert "remediation.maxActionsPerHour 100 -> 2" in clamped[0].message
    assert "remediation.cooldowns.scale 1s -> 30s" in clamped[0].message
    assert loop.spec is not None and loop.spec.remediation.scale.max_replicas == 5
    assert loop.spec.remediation.cooldowns.scale == timedelta(seconds=30)


async def test_outside_the_act_namespaces_it_observes_reports_and_never_acts() -> None:
    world = World(tenancy=Tenancy(act_namespaces=("prod-*",)))
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 6)
    assert world.acts.calls == [], "never acted on"
    assert world.status().health is not None and str(world.status().health) != "Healthy"
    assert world.events.reasons().count(Reason.OBSERVE_ONLY) == 1
    allowed = next(c for c in world.status().conditions if c.type == "ActionsAllowed")
    assert allowed.status == "False" and NS in allowed.message


async def test_a_refused_target_is_said_once_while_it_lasts() -> None:
    world = World(refused=("spec.service.url refused: a link-local address; nothing fetched",))
    loop = world.loop()
    await world.cycles(loop, 3)
    assert world.events.reasons().count(Reason.TARGET_REFUSED) == 1
    world.refused = ("override errorRate refused: query cannot be parsed: x",)
    await world.cycles(loop, 3)
    assert world.events.reasons().count(Reason.TARGET_REFUSED) == 2


async def test_the_alert_sink_sees_each_cycles_incident_and_its_problem_is_said_once() -> None:
    world = World()
    world.spec = {**SPEC, "notification": {"alertmanager": {}}}
    loop = await healthy_with_known_good(world)
    world.metrics = ERRORS
    await world.cycles(loop, 3)
    notification, status = world.alerted[-1]
    assert notification.alertmanager is not None
    assert status.incident is not None and status.incident.resolved_at is None
    failed = EventSpec("Warning", Reason.ALERT_NOT_DELIVERED, "Alertmanager did not take the "
                       "alert: HTTP 500; retrying")  # fmt: skip
    world.alert_problem = failed
    await world.cycles(loop, 3)
    world.alert_problem = None  # delivered again
    await world.cycles(loop, 1)
    world.alert_problem = replace(failed, message=failed.message.replace("500", "503"))
    await world.cycles(loop, 2)
    assert world.events.reasons().count(Reason.ALERT_NOT_DELIVERED) == 2
    await world.cycles(loop, 1)
    assert world.events.reasons().count(Reason.ALERT_NOT_DELIVERED) == 2
    (condition,) = [c for c in world.status().conditions if c.type == "AlertsDelivered"]
    assert condition.status == "False" and "HTTP 503" in condition.message
    world.alert_problem = None
    await world.cycles(loop, 1)
    (condition,) = [c for c in world.status().conditions if c.type == "AlertsDelivered"]
    assert condition.status == "True" and condition.reason == "Delivered"


async def test_a_steady_alerts_delivered_condition_keeps_its_time_and_writes_nothing() -> None:
    world = World()
    world.spec = {**SPEC, "notification": {"alertmanager": {}}}
    loop = await healthy_with_known_good(world)
    version = world.version
    (delivered,) = [c for c in loop.store.written.conditions if c.type == "AlertsDelivered"]
    await world.cycles(loop, 3)
    assert world.version == version, "a healthy, unchanged service wrote its status"
    (still,) = [c for c in world.status().conditions if c.type == "AlertsDelivered"]
    assert still.last_transition_time == delivered.last_transition_time


async def test_the_guard_acts_for_the_same_subject_as_the_cycle() -> None:
    """The rollout guard's rollback of a Deployment Flux applies must follow Flux (suspend,
    advice, page) as the cycle's does: it is handed the GitOps owner too."""
    flux = GitOpsRef("Kustomization", "apps", "flux-system")
    loop = World().loop()
    loop.indexes["deployments"][(NS, NAME)][0]["gitops"] = flux
    handed: list[Any] = []

    class Watch:  # the real RolloutWatch needs pods; this test is about what it is handed
        state: Any = None
        idle_at: Any = None

        async def tick(self, *args: Any) -> None:
            handed.append(args[3])

    loop.watch = Watch()  # type: ignore[assignment]
    await loop.guard_step()
    (subject,) = handed
    assert subject.gitops == flux and subject.deployment_ref is not None


class TickedWatch:
    """A rollout watch that notes the template hash of each tick (the real RolloutWatch needs
    pods; these tests are about when it is ticked)."""

    def __init__(self, ticks: list[str]) -> None:
        self.ticks, self.state, self.idle_at = ticks, cast(Any, None), cast(Any, None)

    async def tick(self, spec: Any, indexes: Any, workload: Any, *args: Any) -> None:
        self.ticks.append(workload.template_hash)


async def test_between_rollouts_a_guard_tick_is_skipped_until_what_shows_one_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,250 services a replica, a tick every 2 s each: between rollouts a tick is skipped
    while the Deployment's revision and its ReplicaSets as the workload watch keeps them
    stand still, and a rollout (a new ReplicaSet, a new revision) is ticked at once; a watch
    under way ticks every time. Without the Deployments index (RBAC) nothing is skipped and
    nothing fails."""
    world = World()
    loop = world.loop()
    failed: list[str] = []
    monkeypatch.setattr(service_loop.telemetry, "failed", lambda ns, name: failed.append(name))
    cluster = Cluster(("replicasets", replicaset(NAME, "bbb")), ("pods", pod(NAME, "bbb", 1)))
    kept = await started(cluster)  # the real workload watch, over plain objects
    ticks: list[str] = []
    try:
        loop.watch = TickedWatch(ticks)  # type: ignore[assignment]
        loop.ports = replace(loop.ports, workloads=kept)
        for _ in range(4):
            await loop.guard_step()
        assert ticks == ["bbb"]  # once: nothing moved since
        await cluster.send("replicasets", "ADDED", replicaset(NAME, "ccc"))  # a rollout
        world.template = "ccc"  # ... and the Deployment's new revision
        loop.indexes = world.indexes()
        await loop.guard_step()
        assert ticks == ["bbb", "ccc"]
        loop.watch.state = "watching"
        await loop.guard_step()
        await loop.guard_step()
        assert ticks == ["bbb", "ccc", "ccc", "ccc"]
        loop.watch.state = None
        del loop.indexes["deployments"]  # the RBAC allows no Deployments index
        why = {"deployments": "cannot list deployments"}
        loop.ports = replace(loop.ports, missing_permissions=why)
        assert guard_marker(NS, loop._spec(), loop.indexes, kept, 1) is None
        await loop.guard_step()
        assert failed == []
    finally:
        await kept.stop()


async def test_guard_ticks_slower_than_their_interval_never_starve_the_cycle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollout watch whose ticks take longer than `rolloutGuard.interval` (pods that do not
    answer, a loaded machine) still lets the steady cycle run when it is due. A fake clock:
    each tick takes 30 ms of it, a wait takes what it was asked for, no real time passes."""
    import time

    clock = [1000.0]
    monkeypatch.setattr(service_loop, "time",
                        SimpleNamespace(monotonic=lambda: clock[0], time=time.time))  # fmt: skip
    loop = World().loop()
    ticks: list[float] = []

    async def slow_tick() -> None:
        ticks.append(clock[0])
        clock[0] += 0.03  # longer than the guard interval below
        assert len(ticks) < 100, "guard ticks back to back: the cycle never came"

    loop.guard_step = slow_tick  # type: ignore[method-assign]
    loop._guard_interval = lambda: 0.01  # type: ignore[method-assign]
    loop._interval = lambda: 0.1  # type: ignore[method-assign]
    started = clock[0]

    class Running:  # kopf's DaemonStopped as the loop uses it: never stopped, waits a while
        def __bool__(self) -> bool:
            return False

        async def wait(self, seconds: float) -> None:
            clock[0] += seconds

    await loop._wait_guarding(Running(), started)  # type: ignore[arg-type]
    assert ticks, "the guard ticked while the cycle was not due"
    assert clock[0] - started < 0.1 + 0.03, "the cycle came later than one tick after due"
