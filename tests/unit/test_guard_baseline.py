"""The rollout guard with no old pods left (maxSurge 100%, Recreate): the new version against
the old version's baseline from before the change (guard/judge.py's `reference`,
guard/baseline.py's queries and tally). Pure."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.builders import GUARD_LIMITS, GUARD_T0, NEW, OLD
from venue_operator.guard.baseline import baseline_queries, baseline_tally
from venue_operator.guard.judge import (
    GuardState,
    Judgement,
    PodSample,
    RolloutRead,
    Verdict,
    advance,
)
from venue_operator.guard.tally import VersionTally
from venue_operator.model.observations import Reading
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.observe.answers import Sample
from venue_operator.tenancy.promql_scope import Refused

T0, LIMITS = GUARD_T0, GUARD_LIMITS
FAST, SLOW = 0.05, 2.6


def buckets(requests: float, latency: float) -> dict[float, float]:
    cumulative = {le: (requests if le >= latency else 0.0) for le in (0.1, 0.5, 1.0, 2.0, 5.0)}
    return {**cumulative, math.inf: requests}


def baseline(requests: float = 6000, ratio: float = 0.001, latency: float = FAST) -> VersionTally:
    """The old version over 5 minutes at 20 req/s: 6,000 requests."""
    return VersionTally.of_window(requests, requests * ratio, buckets(requests, latency), {}, 20)


def pods_at(at: float, ratio: float, count: int, latency: float) -> list[PodSample]:
    """`count` new pods born at the change, 20 req/s each."""
    served = 20 * at
    return [PodSample(f"new-{i}", NEW, T0, requests=served, errors=served * ratio,
                      buckets=buckets(served, latency)) for i in range(count)]  # fmt: skip


def fast_rollout(
    ratio: float, reference: VersionTally | None, reads: int = 4, *, old_pod: bool = False,
    latency: float = FAST,
) -> Judgement:  # fmt: skip
    """Ten new pods, every old pod gone (or one still answering); reads every 2 s from 2 s,
    the first a baseline of each pod (latency counts 10 s after it: warm-up)."""
    state = replace(GuardState.begin(T0, NEW), baseline=reference)
    judgement = Judgement(Verdict.WATCHING)
    start = 2.0
    for k in range(reads):
        at = start + 2.0 * k
        pods = pods_at(at, ratio, 10, latency)
        if old_pod:
            pods.append(PodSample("old-0", OLD, T0 - timedelta(hours=1),
                                  requests=50_000 + 20 * at, errors=50))  # fmt: skip
        read = RolloutRead(T0 + timedelta(seconds=at), NEW, tuple(pods))
        state, judgement = advance(state, read, LIMITS)
    return judgement


@pytest.mark.parametrize(
    ("case", "judgement", "verdict"),
    [
        ("bad, no old pods, no baseline: nothing to compare",
         lambda: fast_rollout(0.12, None), Verdict.WATCHING),
        ("bad against the baseline, confirmed",
         lambda: fast_rollout(0.12, baseline()), Verdict.BAD),
        ("bad against the baseline, one read", lambda: fast_rollout(0.12, baseline(), 2),
         Verdict.SUSPECT),
        ("good against the baseline", lambda: fast_rollout(0.001, baseline(), 10),
         Verdict.WATCHING),
        ("noisy like the baseline", lambda: fast_rollout(0.008, baseline(ratio=0.008), 10),
         Verdict.WATCHING),
        ("as bad as the baseline (the old version was bad too)",
         lambda: fast_rollout(0.12, baseline(ratio=0.11), 10), Verdict.WATCHING),
        ("baseline too small to be significant",
         lambda: fast_rollout(0.06, baseline(requests=40, ratio=0.0)), Verdict.WATCHING),
        ("an old pod still answering is the reference, not the baseline",
         lambda: fast_rollout(0.12, baseline(ratio=0.2), old_pod=True), Verdict.BAD),
        ("slow against a fast baseline",
         lambda: fast_rollout(0.0, baseline(), 10, latency=SLOW), Verdict.BAD),
    ],
)  # fmt: skip
def test_baseline_comparison_table(case: str, judgement: object, verdict: Verdict) -> None:
    assert callable(judgement)
    assert judgement().verdict == verdict, case


def test_a_finding_against_the_baseline_says_so() -> None:
    judgement = fast_rollout(0.12, baseline())
    assert judgement.reason.startswith("new 12.0% 5xx over 1,200 requests vs the old version ")
    assert "before the change 0.1% over 6,000, p < 0.001" in judgement.reason


def test_baseline_queries_are_scoped_and_evaluated_at_the_change() -> None:
    guard = RolloutGuard.model_validate({"baselineWindow": "2m", "tenants": {"label": "team"}})
    queries = baseline_queries({"service": "venue", "namespace": "other"}, "prod", guard, T0)
    assert not isinstance(queries, Refused)
    requests, latency = queries
    assert requests.startswith("sum by (status_code, team)(increase(http_requests_total{")
    assert latency.startswith("sum by (le)(increase(http_request_duration_seconds_bucket{")
    for query in queries:
        assert 'namespace="prod"' in query and "other" not in query
        assert f"[2m] @ {T0.timestamp():.3f}" in query


def test_the_baseline_tally_from_increases() -> None:
    answer = (
        Sample({"status_code": "200", "tenant": "a"}, Reading.of(900.4)),
        Sample({"status_code": "500", "tenant": "a"}, Reading.of(9.6)),
        Sample({"status_code": "200", "tenant": "b"}, Reading.of(90)),
        Sample({"status_code": "503"}, Reading.unknown("NaN")),
    )
    latency = (
        Sample({"le": "0.1"}, Reading.of(700)),
        Sample({"le": "0.5"}, Reading.of(990)),
        Sample({"le": "+Inf"}, Reading.of(1000)),
        Sample({"le": "junk"}, Reading.of(5)),
    )
    tally = baseline_tally(answer, latency, RolloutGuard())
    assert (tally.requests, tally.errors) == pytest.approx((1000, 9.6))
    assert tally.tenants == {"a": pytest.approx((910, 9.6)), "b": (90, 0)}
    assert tally.latency == {0.1: 700, 0.5: 290, math.inf: 10}


@pytest.mark.parametrize("window", ["10s", "2h"])
def test_the_baseline_window_is_bounded(window: str) -> None:
    with pytest.raises(ValueError, match="baselineWindow"):
        RolloutGuard.model_validate({"baselineWindow": window})
