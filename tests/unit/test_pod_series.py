"""The rollout guard's Prometheus fallback, pure parts (guard/pod_series.py): series by `pod`
-> each pod's counters -> the samples the guard folds per version (guard/judge.py), with
counter resets, pods missing from Prometheus, and pods whose source changes."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from tests.unit.builders import GUARD_LIMITS, GUARD_T0, NEW, OLD
from venue_operator.guard.judge import GuardState, PodSample, RolloutRead, advance
from venue_operator.guard.pod_series import PodCounters, from_prometheus, pod_counters, pod_queries
from venue_operator.model.observations import Reading
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.model.status import GuardSource
from venue_operator.observe.answers import Sample
from venue_operator.observe.prometheus import MAX_MATCHER_CHARS
from venue_operator.tenancy.promql_scope import Refused

T0, LIMITS = GUARD_T0, GUARD_LIMITS
GUARD = RolloutGuard()
INF = math.inf


def requests(pod: str, code: str, value: float | None, route: str = "/a") -> Sample:
    reading = Reading.of(value) if value is not None else Reading.unknown("query returned NaN")
    return Sample({"pod": pod, "status_code": code, "route": route}, reading)


def bucket(pod: str, le: str, value: float) -> Sample:
    return Sample({"pod": pod, "le": le}, Reading.of(value))


def test_series_become_each_pods_counters() -> None:
    found = pod_counters(
        (requests("a", "200", 90), requests("a", "503", 4), requests("a", "500", 6, "/b"),
         requests("a", "429", 10), requests("b", "200", 50), requests("c", "200", None),
         Sample({"status_code": "200"}, Reading.of(7))),  # no pod label: not a pod's
        (bucket("a", "0.5", 60), bucket("a", "+Inf", 110), bucket("a", "junk", 3),
         bucket("b", "+Inf", 50), bucket("z", "+Inf", 9)),  # z: buckets but no requests
    )  # fmt: skip
    assert found == {
        "a": PodCounters(110, 10, {0.5: 60, INF: 110}),
        "b": PodCounters(50, 0, {INF: 50}),
    }  # c had no value, z no request series: both unknown, never zeros


def sample(name: str, version: str, *, ready: bool = True, reachable: bool = False) -> PodSample:
    """A direct read of a pod: unreachable unless said otherwise (its health probe failed)."""
    return PodSample(name, version, T0 - timedelta(hours=1), ready=ready, reachable=reachable,
                     health_ok=reachable)  # fmt: skip


def test_only_ready_pods_that_did_not_answer_are_read_from_prometheus() -> None:
    direct = PodSample("direct", OLD, T0, requests=5.0, health_ok=True)
    found = {name: PodCounters(100, 3, {INF: 100}) for name in ("direct", "blocked", "starting")}
    out = from_prometheus(
        [direct, sample("blocked", NEW), sample("starting", NEW, ready=False), sample("gone", NEW)],
        found,
    )
    assert out[0] is direct  # answered on :3002: the direct read stands
    blocked = out[1]
    assert (blocked.reachable, blocked.source, blocked.health_ok) == (
        True, GuardSource.PROMETHEUS, None)  # fmt: skip
    assert (blocked.requests, blocked.errors, dict(blocked.buckets)) == (100, 3, {INF: 100})
    assert not out[2].reachable  # not Ready: serves no traffic, as in a direct read
    assert not out[3].reachable and out[3].source is GuardSource.DIRECT  # no series


def from_series(
    at: float, counts: dict[str, tuple[str, float, float]], missing: tuple[str, ...] = ()
) -> RolloutRead:
    """A read in which no pod answered on :3002: those in `counts` (name -> version,
    requests, 5xx) have series in Prometheus, the `missing` (new) ones have none."""
    pods = [sample(name, version) for name, (version, _, _) in counts.items()]
    pods += [sample(name, NEW) for name in missing]
    found = {
        name: PodCounters(total, bad, {0.1: total, INF: total})
        for name, (_, total, bad) in counts.items()
    }
    return RolloutRead(T0 + timedelta(seconds=at), NEW, from_prometheus(pods, found))


def fold(*reads: RolloutRead) -> GuardState:
    state = GuardState.begin(T0, NEW)
    for read in reads:
        state, _ = advance(state, read, LIMITS)
    return state


def test_series_fold_per_version_across_a_counter_reset() -> None:
    state = fold(
        from_series(1, {"old-a": (OLD, 1000, 1), "new-a": (NEW, 10, 0)}),  # baselines
        from_series(3, {"old-a": (OLD, 1500, 2), "new-a": (NEW, 60, 10)}),
        # new-a restarted between scrapes: its counters start again from zero
        from_series(5, {"old-a": (OLD, 2000, 3), "new-a": (NEW, 40, 8)}),
    )
    assert (state.old.requests, state.old.errors) == (1000, 2)
    assert (state.new.requests, state.new.errors) == (90, 18)


def test_a_pod_missing_from_prometheus_is_unknown_then_counted_from_where_it_was() -> None:
    state = fold(
        from_series(1, {"old-a": (OLD, 1000, 1), "new-a": (NEW, 10, 0)}),
        from_series(3, {"old-a": (OLD, 1500, 1)}, missing=("new-a",)),  # its scrape failed
        from_series(5, {"old-a": (OLD, 2000, 1), "new-a": (NEW, 110, 20)}),
    )
    assert (state.new.requests, state.new.errors) == (100, 20)  # nothing lost, nothing zeroed
    assert state.pods["new-a"].source is GuardSource.PROMETHEUS


def test_a_pod_whose_source_changes_is_baselined_again_not_read_as_a_restart() -> None:
    """A scrape is older than the last direct read: its lower totals are no restart."""
    direct = RolloutRead(T0 + timedelta(seconds=1), NEW,
                         (PodSample("new-a", NEW, T0, requests=500.0, errors=50.0),))  # fmt: skip
    state = fold(
        RolloutRead(T0, NEW, (PodSample("new-a", NEW, T0, requests=400.0, errors=40.0),)),
        direct,  # +100 requests, +10 5xx, read directly
        from_series(3, {"new-a": (NEW, 480, 48)}),  # older than that direct read: a baseline
        from_series(5, {"new-a": (NEW, 580, 60)}),  # +100, +12
    )
    assert (state.new.requests, state.new.errors) == (200, 22)
    assert state.pods["new-a"].answering_since == T0  # no restart: warm-up not restarted


def test_queries_are_scoped_to_the_services_selector_and_namespace() -> None:
    queries = pod_queries(
        {"service": "venue", "namespace": "prod"}, "prod", ["venue-b", "venue-a"], GUARD
    )
    assert not isinstance(queries, Refused)
    requests_query, buckets_query = queries
    for query in queries:
        assert 'namespace="prod"' in query and 'service="venue"' in query
        assert 'pod=~"venue-a|venue-b"' in query
    assert requests_query.startswith("sum by (pod, status_code, tenant)(http_requests_total{")
    assert buckets_query.startswith("sum by (pod, le)(http_request_duration_seconds_bucket{")


def test_the_tenant_label_is_the_specs_and_none_without_tenants() -> None:
    by_team = RolloutGuard.model_validate({"tenants": {"label": "team"}})
    overall = RolloutGuard.model_validate({"tenants": {"maxTenants": 0}})
    team = pod_queries({"service": "venue"}, "prod", ["venue-a"], by_team)
    none = pod_queries({"service": "venue"}, "prod", ["venue-a"], overall)
    assert not isinstance(team, Refused) and not isinstance(none, Refused)
    assert team[0].startswith("sum by (pod, status_code, team)(")
    assert none[0].startswith("sum by (pod, status_code)(")


def test_series_by_tenant_become_each_pods_busiest_tenants() -> None:
    def by(tenant: str, code: str, value: float) -> Sample:
        return Sample({"pod": "a", "status_code": code, "tenant": tenant}, Reading.of(value))

    two = RolloutGuard.model_validate({"tenants": {"maxTenants": 2}})
    found = pod_counters(
        (by("t1", "200", 90), by("t1", "500", 10), by("t2", "200", 40), by("t3", "503", 5),
         by("x" * 200, "200", 1)),
        (bucket("a", "+Inf", 146),),
        two,
    )  # fmt: skip
    assert (found["a"].requests, found["a"].errors) == (146, 15)
    assert found["a"].tenants == {"t1": (100, 10), "t2": (40, 0)}


def test_a_tenants_selector_cannot_widen_the_namespace() -> None:
    queries = pod_queries({"service": "venue", "namespace": "other"}, "prod", ["venue-a"], GUARD)
    assert not isinstance(queries, Refused)
    for query in queries:
        assert 'namespace="prod"' in query and "other" not in query


def test_a_long_pod_list_is_named_and_one_past_the_cap_reads_every_pod_of_the_service() -> None:
    names = [f"venue-{'x' * 40}-{n}" for n in range(100)]  # past a URL's 4 KiB: sent as a form
    queries = pod_queries({"service": "venue"}, "prod", names, GUARD)
    assert not isinstance(queries, Refused)
    assert all(f"venue-{'x' * 40}-99" in q and 'pod!=""' not in q for q in queries)
    names = [f"venue-{'x' * 40}-{n}" for n in range(MAX_MATCHER_CHARS // 40)]
    queries = pod_queries({"service": "venue"}, "prod", names, GUARD)
    assert not isinstance(queries, Refused)
    assert all('pod!=""' in q and 'namespace="prod"' in q for q in queries)


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\nb"])
def test_label_values_with_quotes_are_escaped_or_refused(value: str) -> None:
    queries = pod_queries({"service": value}, "prod", ["venue-a"], GUARD)
    if not isinstance(queries, Refused):
        assert all('namespace="prod"' in q for q in queries)
