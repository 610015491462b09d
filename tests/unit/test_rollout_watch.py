"""The rollout watch's glue without a cluster: when a watch starts and ends (from index
summaries), and what it says in status."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from venue_operator.model import VenueServiceSpec
from venue_operator.observe.pods import PodTarget
from venue_operator.remediate import Subject
from venue_operator.rollout_guard import PodSample
from venue_operator.rollout_watch import RolloutWatch, guard_condition
from venue_operator.service_loop import workload_from_indexes

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
