"""The rollout watch's glue without a cluster: when a watch starts and ends (from index
summaries), what it says in status, and what a bad version makes it do (the real guard,
decide_guard and Remediator; the writer and Events are test_service_loop's fakes)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tests.unit.test_service_loop import FakeActs, FakeEvents
from venue_operator.model import VenueServiceSpec, VenueServiceStatus
from venue_operator.observe.pods import PodTarget
from venue_operator.reasons import Reason
from venue_operator.remediate import Remediator, Subject
from venue_operator.rollout_guard import PodSample
from venue_operator.rollout_watch import RolloutWatch, guard_condition
from venue_operator.service_loop import workload_from_indexes
from venue_operator.status_store import StatusStore

SPEC = VenueServiceSpec.model_validate(
    {"deployment": {"name": "venue"}, "remediation": {"rollback": {"bakeTime": "30s"}}}
)
NOW = datetime.now(UTC)


def indexes(revision: int, complete: bool, rolled_back_to: str | None = None) -> dict[str, Any]:
    deployment = {"name": "venue", "uid": "u1", "replicas": 1, "ready": 1, "revision": revision,
                  "complete": complete, "paused": False,
                  "rolled_back_to": rolled_back_to}  # fmt: skip
    replicasets = [
        {
            "name": f"venue-h{n}",
            "revision": n,
            "hash": f"h{n}",
            "created": NOW.isoformat(),
            "migration": None,
            "backward_compatible": False,
        }
        for n in (1, 2, 3)
    ]
    pod = {"name": "venue-h1-a", "ip": "127.9.0.2", "hash": "h1", "ready": True,
           "crash_looping": False, "created": (NOW - timedelta(hours=1)).isoformat()}  # fmt: skip
    return {
        "deployments": {("ns", "venue"): [deployment]},
        "replicasets": {("ns", "venue"): replicasets},
        "pods": {("ns", "venue-h1"): [pod]},
        "jobs": {},
    }


class Reader:
    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self.calls = 0

    async def __call__(self, pods: Iterable[PodTarget], seconds: float) -> tuple[PodSample, ...]:
        self.calls += 1
        return tuple(
            PodSample(
                p.name,
                p.template_hash,
                p.created_at,
                p.ready,
                reachable=self.reachable,
                health_ok=self.reachable,
            )
            for p in pods
        )


def watch(reader: Reader) -> RolloutWatch:
    return RolloutWatch("ns", reader, cast(Any, None), cast(Any, None))


async def tick(w: RolloutWatch, idx: dict[str, Any]) -> None:
    """One tick, given the WorkloadState the service loop builds from the same indexes."""
    workload, ref = workload_from_indexes("ns", SPEC, idx)
    await w.tick(SPEC, idx, workload, Subject("ns", "venue", SPEC, ref), paused=False)


async def test_a_template_change_starts_a_watch_and_our_rollback_does_not() -> None:
    reader = Reader()
    w = watch(reader)
    await tick(w, indexes(1, complete=True))
    assert not w.watching and reader.calls == 0  # at start, nothing rolling out
    await tick(w, indexes(2, complete=False))
    assert w.watching and w.state is not None and w.state.new_hash == "h2"
    assert reader.calls == 1
    await tick(w, indexes(3, complete=True, rolled_back_to="h3"))
    assert not w.watching  # the template we rolled back to


async def test_a_first_deployment_is_no_rollout() -> None:
    w = watch(Reader())
    idx = indexes(1, complete=False)
    await tick(w, idx)
    assert not w.watching


async def test_a_rollout_in_progress_at_start_is_watched_until_complete_and_baked() -> None:
    w = watch(Reader())
    await tick(w, indexes(2, complete=False))
    assert w.watching
    await tick(w, indexes(2, complete=True))
    assert w.watching and w.complete_since is not None
    w.complete_since -= timedelta(seconds=31)  # bakeTime 30s later
    await tick(w, indexes(2, complete=True))
    assert not w.watching


async def test_status_says_whether_pods_answer_directly() -> None:
    assert guard_condition(watch(Reader()), None, NOW) is None  # not watching
    seeing, blind = watch(Reader()), watch(Reader(reachable=False))
    for w in (seeing, blind):
        await tick(w, indexes(2, complete=False))
    ok = guard_condition(seeing, None, NOW)
    assert ok is not None and (ok.status, ok.reason) == ("True", "Watching")
    no = guard_condition(blind, ok, NOW)
    assert no is not None and (no.status, no.reason) == ("False", "PodsUnreachable")
    assert "no Prometheus fallback" in no.message and no.last_transition_time == NOW


class Counting(Reader):
    """Every call another 1,000 old and 100 new requests; the new pod fails `new_ratio`."""

    def __init__(self, new_ratio: float) -> None:
        super().__init__()
        self.new_ratio = new_ratio

    async def __call__(self, pods: Iterable[PodTarget], seconds: float) -> tuple[PodSample, ...]:
        self.calls += 1
        k = self.calls
        counts = {"h1": (1000.0 * k, 1.0 * k), "h2": (100.0 * k, 100 * k * self.new_ratio)}
        return tuple(
            PodSample(p.name, p.template_hash, p.created_at, p.ready, health_ok=True,
                      requests=counts[p.template_hash][0], errors=counts[p.template_hash][1])
            for p in pods
        )  # fmt: skip


def rolling_out() -> dict[str, Any]:
    """Revision 2 (h2) rolling out over revision 1 (h1): one pod each."""
    idx = indexes(2, complete=False)
    new = {**idx["pods"][("ns", "venue-h1")][0], "name": "venue-h2-a", "hash": "h2",
           "ip": "127.9.0.3", "created": NOW.isoformat()}  # fmt: skip
    idx["pods"][("ns", "venue-h2")] = [new]
    return idx


def acting_watch(reader: Reader) -> tuple[RolloutWatch, FakeActs, FakeEvents]:
    acts, events = FakeActs(), FakeEvents()

    async def nowhere(*_: Any) -> None:  # the status write and the pager
        pass

    store = StatusStore(nowhere, VenueServiceStatus(healthy_templates=["h1"]))
    remediator = Remediator(acts, events, store, nowhere)
    return RolloutWatch("ns", reader, remediator, store), acts, events


async def ticks(w: RolloutWatch, spec: VenueServiceSpec, count: int) -> None:
    idx = rolling_out()
    workload, ref = workload_from_indexes("ns", spec, idx)
    for _ in range(count):
        await w.tick(spec, idx, workload, Subject("ns", "venue", spec, ref), paused=False)


async def test_a_confirmed_bad_version_is_paused_then_rolled_back_with_resume() -> None:
    reader = Counting(new_ratio=0.2)
    w, acts, events = acting_watch(reader)
    await ticks(w, SPEC, 5)
    # read 1 is the baseline, read 2 suspects, read 3 confirms and acts; then judged no more
    assert reader.calls == 3
    assert [what for what, _ in acts.calls] == ["pause_rollout", "roll_back"]
    _, (namespace, deployment, to, cause, _, resume) = acts.calls[1]
    assert (namespace, deployment, to, resume) == ("ns", "venue", "h1", True)
    assert "new 20.0% 5xx over 200 requests vs old 0.1% over 2,000" in cause
    assert {Reason.ROLLOUT_PAUSED, Reason.ROLLED_BACK} <= set(events.reasons())
    assert [r.action for r in w.store.written.history] == ["RollBack"]


async def test_a_bad_version_held_back_is_said_once_and_judged_no_more() -> None:
    off = VenueServiceSpec.model_validate({"deployment": {"name": "venue"},
                                           "remediation": {"mode": "Off"}})  # fmt: skip
    reader = Counting(new_ratio=0.2)
    w, acts, events = acting_watch(reader)
    await ticks(w, off, 5)
    assert reader.calls == 3 and not acts.calls
    assert events.reasons() == [Reason.REMEDIATION_HELD]


async def test_an_equal_version_is_left_alone() -> None:
    reader = Counting(new_ratio=0.001)
    w, acts, events = acting_watch(reader)
    await ticks(w, SPEC, 5)
    assert reader.calls == 5 and not acts.calls and not events.posted and w.watching
