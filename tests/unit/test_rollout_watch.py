"""The rollout watch's glue without a cluster: when a watch starts and ends (from index
summaries), what it says in status, and what a bad version makes it do (the real guard,
decide_guard and Remediator; the writer and Events are test_service_loop's fakes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from tests.unit.test_service_loop import FakeActs, FakeEvents
from venue_operator.decide.decision import Action
from venue_operator.decide.guardrails import dependency_echo
from venue_operator.guard.judge import PodSample
from venue_operator.guard.pod_metrics import PodTarget
from venue_operator.guard.watch import RolloutWatch, guard_condition, guard_status, with_guard
from venue_operator.kube.status_store import StatusStore, status_body
from venue_operator.loop.workload import workload_from_indexes
from venue_operator.model.observations import Reading
from venue_operator.model.reasons import Reason
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.rollout_guard import PodEndpoint, RolloutGuard
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    Condition,
    GuardSource,
    Incident,
    RolloutGuardStatus,
    Severity,
    VenueServiceStatus,
)
from venue_operator.observe.answers import Sample, Samples
from venue_operator.remediate.ports import Subject
from venue_operator.remediate.remediator import Remediator
from venue_operator.tenancy.policy import Tenancy

SPEC = VenueServiceSpec.model_validate(
    {"deployment": {"name": "venue"}, "remediation": {"rollback": {"bakeTime": "30s"}}}
)
NOW = datetime.now(UTC)
GUARD = RolloutGuard()


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

    async def __call__(
        self, pods: Iterable[PodTarget], seconds: float, guard: RolloutGuard = GUARD
    ) -> tuple[PodSample, ...]:
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


async def nowhere(*_: Any) -> None:  # the status write
    pass


def watch(reader: Reader) -> RolloutWatch:
    return RolloutWatch("ns", reader, cast(Any, None), StatusStore(nowhere, VenueServiceStatus()))


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
    assert "Prometheus did not stand in (no Prometheus reader)" in no.message
    assert no.last_transition_time == NOW
    assert guard_status(seeing) == RolloutGuardStatus(
        template="h2", source=GuardSource.DIRECT, message="reading each pod on podIP:3002"
    )
    assert seeing.store.written.rollout_guard == guard_status(seeing)  # said at once


class Counting(Reader):
    """Every call another 1,000 old and 100 new requests; the new pod fails `new_ratio`."""

    def __init__(self, new_ratio: float) -> None:
        super().__init__()
        self.new_ratio = new_ratio

    async def __call__(
        self, pods: Iterable[PodTarget], seconds: float, guard: RolloutGuard = GUARD
    ) -> tuple[PodSample, ...]:
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


def acting_watch(reader: Reader, **fallback: Any) -> tuple[RolloutWatch, FakeActs, FakeEvents]:
    acts, events = FakeActs(), FakeEvents()
    store = StatusStore(nowhere, VenueServiceStatus(healthy_templates=["h1"]))
    remediator = Remediator(acts, events, store)
    return RolloutWatch("ns", reader, remediator, store, **fallback), acts, events


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


class Fast(Counting):
    """Counting, every request answered under 100 ms."""

    async def __call__(
        self, pods: Iterable[PodTarget], seconds: float, guard: RolloutGuard = GUARD
    ) -> tuple[PodSample, ...]:
        samples = await super().__call__(pods, seconds, guard)
        return tuple(replace(s, buckets={0.1: s.requests}) for s in samples)


async def test_the_word_on_warm_latency_lasts_past_the_watch_until_the_next_rollout() -> None:
    spec = SPEC.model_copy(update={"rollout_guard": RolloutGuard(warm_up=timedelta(0))})
    w, _, _ = acting_watch(Fast(new_ratio=0.001))
    await ticks(w, spec, 3)  # a baseline, then 100 new requests a read (minRequests 50)
    assert w.warm_up is not None and w.warm_up.template == "h2" and w.warm_up.until is None
    assert "p99 past their 0 s warm-up is " in w.warm_up.said
    complete = rolling_out()
    complete["deployments"][("ns", "venue")][0]["complete"] = True
    await tick_with(w, spec, complete)
    assert w.complete_since is not None
    w.complete_since -= timedelta(seconds=31)  # bakeTime 30s later: the watch ends
    await tick_with(w, spec, complete)
    assert not w.watching and w.warm_up is not None and w.warm_up.until is not None
    await tick_with(w, spec, indexes(3, complete=False))  # the next rollout: no word yet
    assert w.watching and w.warm_up is None


async def tick_with(w: RolloutWatch, spec: VenueServiceSpec, idx: dict[str, Any]) -> None:
    workload, ref = workload_from_indexes("ns", spec, idx)
    await w.tick(spec, idx, workload, Subject("ns", "venue", spec, ref), paused=False)


# --- the Prometheus fallback: pods that do not answer on podIP:3002 ------------------------


class Prometheus:
    """Answers the fallback's two queries as Prometheus would, from Counting's totals (one
    read behind: a scrape is older than a direct read); records every query."""

    def __init__(self, counting: Counting) -> None:
        self.counting = counting
        self.queries: list[tuple[str, str]] = []
        self.down = False

    async def __call__(self, url: str, promql: str, what: str) -> Samples | str:
        self.queries.append((url, promql))
        if self.down:
            return "prometheus query failed: connection refused"
        k = max(self.counting.calls - 1, 1)
        totals = {"venue-h1-a": (1000.0 * k, 1.0 * k),
                  "venue-h2-a": (100.0 * k, 100 * k * self.counting.new_ratio)}  # fmt: skip
        if "le" in promql:
            return tuple(Sample({"pod": p, "le": "+Inf"}, Reading.of(r))
                         for p, (r, _) in totals.items())  # fmt: skip
        return tuple(
            Sample({"pod": p, "status_code": code}, Reading.of(value))
            for p, (r, e) in totals.items()
            for code, value in (("200", r - e), ("500", e))
        )


class Blocked(Counting):
    """A NetworkPolicy in the way: no pod answers on :3002 (its counters still count)."""

    async def __call__(
        self, pods: Iterable[PodTarget], seconds: float, guard: RolloutGuard = GUARD
    ) -> tuple[PodSample, ...]:
        read = await super().__call__(pods, seconds, guard)
        return tuple(PodSample(s.name, s.template_hash, s.created_at, s.ready, reachable=False,
                               health_ok=False) for s in read)  # fmt: skip


PROM = "http://prometheus.monitoring.svc:9090"


def fallback(reader: Counting, **more: Any) -> tuple[RolloutWatch, FakeActs, FakeEvents, Any]:
    prometheus = Prometheus(reader)
    w, acts, events = acting_watch(reader, read_series=prometheus, prometheus_url=PROM, **more)
    return w, acts, events, prometheus


async def test_pods_unreachable_are_read_from_prometheus_by_pod_and_status_says_so() -> None:
    w, acts, events, prometheus = fallback(Blocked(new_ratio=0.001))
    await ticks(w, SPEC, 4)
    assert w.source is GuardSource.PROMETHEUS and w.unreachable is None
    assert not acts.calls  # an equal version, judged on the series
    url, query = next(q for q in prometheus.queries if "pod=~" in q[1])
    assert url == PROM and 'namespace="ns"' in query and 'service="venue"' in query
    assert 'pod=~"venue-h1-a|venue-h2-a"' in query
    said = [e for _, e in events.posted if e.reason is Reason.GUARD_SOURCE_CHANGED]
    assert len(said) == 1 and said[0].type == "Warning"  # once, not every read
    assert said[0].message.startswith("pods unreachable on :3002; reading Prometheus series by pod")
    written = w.store.written
    assert written.rollout_guard == RolloutGuardStatus(
        template="h2", source=GuardSource.PROMETHEUS,
        message="pods unreachable on :3002; reading Prometheus series by pod")  # fmt: skip
    condition = next(c for c in written.conditions if c.type == "RolloutGuard")
    assert (condition.status, condition.reason) == ("True", "ReadingPrometheus")
    assert w.state is not None and w.state.old.requests == 2000  # counted from the series


async def test_a_bad_version_read_from_prometheus_is_rolled_back_saying_so() -> None:
    w, acts, _, _ = fallback(Blocked(new_ratio=0.2))
    await ticks(w, SPEC, 6)
    assert [what for what, _ in acts.calls] == ["pause_rollout", "roll_back"]
    cause = acts.calls[1][1][3]
    assert "vs old 0.1% over" in cause and "from Prometheus series by pod" in cause
    assert w.store.written.rollout_guard is not None
    assert w.store.written.rollout_guard.source is GuardSource.PROMETHEUS


async def test_pods_answering_again_are_read_directly_and_that_is_said_once() -> None:
    reader = Blocked(new_ratio=0.001)
    w, _, events, _ = fallback(reader)
    await ticks(w, SPEC, 2)
    w.read_pods = Counting(new_ratio=0.001)
    await ticks(w, SPEC, 3)
    said = [e for _, e in events.posted if e.reason is Reason.GUARD_SOURCE_CHANGED]
    assert [e.type for e in said] == ["Warning", "Normal"]
    assert "again" in said[1].message and w.source is GuardSource.DIRECT
    assert w.store.written.rollout_guard is not None
    assert w.store.written.rollout_guard.source is GuardSource.DIRECT


async def test_without_series_or_prometheus_the_guard_says_it_is_blind() -> None:
    w, _, events, prometheus = fallback(Blocked(new_ratio=0.001))
    prometheus.down = True
    await ticks(w, SPEC, 2)
    condition = next(c for c in w.store.written.conditions if c.type == "RolloutGuard")
    assert (condition.status, condition.reason) == ("False", "PodsUnreachable")
    assert "connection refused" in condition.message
    assert not [e for _, e in events.posted if e.reason is Reason.GUARD_SOURCE_CHANGED]


class Unlabelled(Prometheus):
    """Has the service's series (`has_series`), but none labelled `pod`."""

    def __init__(self, counting: Counting, has_series: bool) -> None:
        super().__init__(counting)
        self.has_series = has_series

    async def __call__(self, url: str, promql: str, what: str) -> Samples | str:
        self.queries.append((url, promql))
        if promql.startswith("count(") and self.has_series and 'pod!=""' not in promql:
            return (Sample({}, Reading.of(4)),)
        return ()


@pytest.mark.parametrize(
    ("has_series", "said"),
    [
        (False, 'no http_requests_total series with {namespace="ns",service="venue"}: set '
                "spec.prometheus.matchLabels"),
        (True, 'series with {namespace="ns",service="venue"} but none labelled `pod`'),
    ],
)  # fmt: skip
async def test_without_series_by_pod_status_names_the_missing_label(
    has_series: bool, said: str
) -> None:
    reader = Blocked(new_ratio=0.001)
    prometheus = Unlabelled(reader, has_series)
    w, _, _ = acting_watch(reader, read_series=prometheus, prometheus_url=PROM)
    on_8443 = SPEC.model_copy(
        update={"rollout_guard": SPEC.rollout_guard.model_copy(
            update={"pods": PodEndpoint(port=8443, scheme="https")})}
    )  # fmt: skip
    await ticks(w, on_8443, 2)
    condition = next(c for c in w.store.written.conditions if c.type == "RolloutGuard")
    assert (condition.status, condition.reason) == ("False", "PodsUnreachable")
    assert "answered on podIP:8443" in condition.message and said in condition.message
    assert w.store.written.rollout_guard is not None
    assert said in w.store.written.rollout_guard.message


async def test_a_prometheus_the_tenant_may_not_use_is_never_asked() -> None:
    elsewhere = VenueServiceSpec.model_validate(
        {"deployment": {"name": "venue"}, "prometheus": {"url": "http://evil.example:9090"}}
    )
    w, _, _, prometheus = fallback(Blocked(new_ratio=0.2), tenancy=Tenancy())
    await ticks(w, elsewhere, 3)
    assert not prometheus.queries and w.unreachable == 2
    condition = next(c for c in w.store.written.conditions if c.type == "RolloutGuard")
    assert condition.reason == "PodsUnreachable"
    assert "spec.prometheus.url refused" in condition.message


async def test_the_guards_condition_is_replaced_in_place_and_gone_after_the_watch() -> None:
    w = watch(Reader())
    assert with_guard(VenueServiceStatus(), VenueServiceStatus(), w, NOW) == VenueServiceStatus()
    await tick(w, indexes(2, complete=False))
    then = NOW - timedelta(minutes=5)
    others = [Condition(type=t, status="True", reason="r", last_transition_time=then)
              for t in ("MetricsAvailable", "RolloutGuard", "AlertsDelivered")]  # fmt: skip
    status = VenueServiceStatus(conditions=others)
    watching = with_guard(status, status, w, NOW)
    assert [c.type for c in watching.conditions] == [c.type for c in others]  # no reordering
    assert watching.conditions[1].reason == "Watching"
    assert watching.conditions[1].last_transition_time == then  # still True: same transition
    w.state = None
    done = with_guard(watching, watching, w, NOW)
    assert done.rollout_guard is None
    assert [c.type for c in done.conditions] == ["MetricsAvailable", "AlertsDelivered"]


async def test_during_a_dependency_outages_echo_old_and_new_pods_are_still_compared() -> None:
    """#21: the cycle waits out the echo window after the circuit closed (the errors may be
    the outage's), but while old and new pods can be compared the guard needs no wait: the
    old pods are healthy, so the new version is to blame, and it is rolled back now."""

    def record(action: Action, seconds_ago: int) -> ActionRecord:
        at = NOW - timedelta(seconds=seconds_ago)
        return ActionRecord(at=at, action=action, reason="db", result=ActionResult.SUCCEEDED,
                            correlation_id=f"c-{seconds_ago}")  # fmt: skip

    echoing = VenueServiceStatus(
        healthy_templates=["h1"],
        incident=Incident(id="i-1", opened_at=NOW - timedelta(minutes=3), severity=Severity.P1),
        history=[record(Action.OPEN_CIRCUIT, 150), record(Action.CLOSE_CIRCUIT, 30)],
    )
    held, _ = dependency_echo(echoing, RemediationPolicy(), NOW)
    assert held is not None and held.held == "dependency-echo"  # the cycle would wait
    w, acts, events = acting_watch(Counting(new_ratio=0.2))
    w.store.reload(status_body(echoing), None)  # what is stored
    await ticks(w, SPEC, 5)
    assert [what for what, _ in acts.calls] == ["pause_rollout", "roll_back"]
    assert Reason.ROLLED_BACK in events.reasons()


# --- no old pods left (maxSurge 100%, Recreate): the old version's baseline -----------------


class Before(Prometheus):
    """The service's 5xx before the change: 0.1% of 6,000 (only the baseline is asked)."""

    async def __call__(self, url: str, promql: str, what: str) -> Samples | str:
        self.queries.append((url, promql))
        if "le" in promql:
            return (Sample({"le": "+Inf"}, Reading.of(6000)),)
        return (Sample({"status_code": "200"}, Reading.of(5994)),
                Sample({"status_code": "500"}, Reading.of(6)))  # fmt: skip


def only_new() -> dict[str, Any]:
    """Revision 2 (h2) has replaced every pod of revision 1 at once."""
    idx = rolling_out()
    idx["pods"].pop(("ns", "venue-h1"))
    return idx


async def test_with_no_old_pods_left_the_new_version_is_judged_against_the_baseline() -> None:
    reader = Counting(new_ratio=0.2)
    prometheus = Before(reader)
    w, acts, _ = acting_watch(reader, read_series=prometheus, prometheus_url=PROM)
    idx = only_new()
    workload, ref = workload_from_indexes("ns", SPEC, idx)
    for _ in range(4):
        await w.tick(SPEC, idx, workload, Subject("ns", "venue", SPEC, ref), paused=False)
    assert [what for what, _ in acts.calls] == ["pause_rollout", "roll_back"]
    cause = acts.calls[1][1][3]
    assert (
        "new 20.0% 5xx over 200 requests vs the old version before the change 0.1% over 6,000"
        in cause
    )
    assert len(prometheus.queries) == 2  # asked once, at the start
    assert all("increase(" in q and "[5m] @ " in q for _, q in prometheus.queries)


async def test_with_no_old_pods_and_no_baseline_status_says_why() -> None:
    reader = Counting(new_ratio=0.2)
    w, acts, _ = acting_watch(reader)  # no Prometheus
    idx = only_new()
    workload, ref = workload_from_indexes("ns", SPEC, idx)
    for _ in range(4):
        await w.tick(SPEC, idx, workload, Subject("ns", "venue", SPEC, ref), paused=False)
    assert not acts.calls and w.baseline_asked == 3
    status = w.store.written.rollout_guard
    assert status is not None
    assert status.message.endswith("; no baseline of the old version: no Prometheus reader")
