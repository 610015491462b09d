"""The rollout guard: its judgement (guard/judge.py) and statistics (guard/stats.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.builders import GUARD_LIMITS, GUARD_T0, NEW, OLD
from venue_operator.guard.judge import (
    GuardLimits,
    GuardState,
    Judgement,
    PodSample,
    RolloutRead,
    Verdict,
    advance,
)
from venue_operator.guard.stats import (
    bucket_delta,
    counter_delta,
    fisher_greater,
    quantile_from_buckets,
)
from venue_operator.model.status import GuardSource

T0, LIMITS = GUARD_T0, GUARD_LIMITS
FAST, SLOW = 0.05, 2.6  # seconds: healthy requests, requests of a version slower than 2 s


def pod(
    name: str,
    version: str,
    requests: float,
    errors: float,
    *,
    born: float = -600.0,
    latency: float = FAST,
    **fields: object,
) -> PodSample:
    """A pod whose every request took `latency` (one histogram bucket holds them all)."""
    buckets = {le: (requests if le >= latency else 0.0) for le in (0.1, 0.5, 1.0, 2.0, 5.0)}
    buckets[math.inf] = requests
    return PodSample(
        name=name,
        template_hash=version,
        created_at=T0 + timedelta(seconds=born),
        requests=requests,
        errors=errors,
        buckets=buckets,
        **fields,  # type: ignore[arg-type]
    )


def run(*reads: tuple[float, list[PodSample]], deadline: bool = False) -> Judgement:
    """Feed reads (seconds after the template change, pods) to a fresh guard; the last verdict."""
    state = GuardState.begin(T0, NEW)
    judgement = Judgement(Verdict.WATCHING)
    for at, pods in reads:
        read = RolloutRead(T0 + timedelta(seconds=at), NEW, tuple(pods), deadline)
        state, judgement = advance(state, read, LIMITS)
    return judgement


def old_pods(at: float, error_ratio: float = 0.002, count: int = 9) -> list[PodSample]:
    """Long-running old pods at 20 req/s each (their totals before the watch are large)."""
    served = 50_000 + 20 * at
    return [
        pod(f"old-{i}", OLD, served, 100 + served * error_ratio - 100 * (at == 0))
        for i in range(count)
    ]


def new_pod(at: float, error_ratio: float, born: float = 0.0, **fields: object) -> PodSample:
    served = 20 * (at - born)
    return pod("new-0", NEW, served, served * error_ratio, born=born, **fields)


def rollout(new_ratio: float, old_ratio: float = 0.002, reads: int = 4) -> Judgement:
    """Reads every 2 s; the first is the baseline, so read k has counted 40 * (k - 1) new."""
    return run(
        *(
            (2.0 * k, [*old_pods(2.0 * k, old_ratio), new_pod(2.0 * k, new_ratio)])
            for k in range(1, reads + 1)
        )
    )


@pytest.mark.parametrize(
    ("case", "judgement", "verdict"),
    [
        ("equal versions", lambda: rollout(0.002), Verdict.WATCHING),
        ("tiny sample: 8 of 40 failed", lambda: rollout(0.2, reads=2), Verdict.WATCHING),
        ("slightly worse, under the 5% floor", lambda: rollout(0.03, reads=6), Verdict.WATCHING),
        ("clearly bad, one read", lambda: rollout(0.12, reads=3), Verdict.SUSPECT),
        ("clearly bad, confirmed", lambda: rollout(0.12, reads=4), Verdict.BAD),
        ("old pods already as bad", lambda: rollout(0.12, old_ratio=0.11), Verdict.WATCHING),
    ],
)
def test_error_ratio_table(case: str, judgement: object, verdict: Verdict) -> None:
    assert callable(judgement)
    assert judgement().verdict == verdict, case


def test_a_bad_version_is_named_with_the_comparison() -> None:
    judgement = rollout(0.12, reads=4)
    assert judgement.verdict == Verdict.BAD
    assert judgement.reason.startswith("new 12.0% 5xx over 120 requests vs old 0.2% over ")
    assert judgement.reason.endswith(", p < 0.001")
    assert judgement.p_value is not None and judgement.p_value < 0.001


def test_a_counter_reset_counts_from_zero_not_negative() -> None:
    # A new pod restarts between reads: its totals drop from 400 to 40 (4 errors).
    restarted = run(
        (20.0, [*old_pods(20.0), new_pod(20.0, 0.002, born=0.0)]),
        (22.0, [*old_pods(22.0), pod("new-0", NEW, 40, 0.04, born=0.0)]),
        (24.0, [*old_pods(24.0), pod("new-0", NEW, 80, 0.08, born=0.0)]),
    )
    assert restarted.verdict == Verdict.WATCHING
    assert counter_delta(400, 40) == 40 and counter_delta(None, 40) == 0
    assert bucket_delta({1.0: 10, math.inf: 20}, {1.0: 1, math.inf: 2}) == {1.0: 1, math.inf: 2}


def test_a_new_pod_that_restarts_is_bad_after_confirmation() -> None:
    def at(t: float, restarts: int) -> list[PodSample]:
        return [*old_pods(t), new_pod(t, 0.0, restarts=restarts)]

    assert run((2.0, at(2.0, 0)), (4.0, at(4.0, 1))).verdict == Verdict.SUSPECT
    judgement = run((2.0, at(2.0, 0)), (4.0, at(4.0, 1)), (6.0, at(6.0, 2)))
    assert judgement.verdict == Verdict.BAD and "new pod new-0 restarting" in judgement.reason


def test_warm_up_slowness_is_not_judged_but_lasting_slowness_is() -> None:
    def slow_for(seconds: float) -> list[tuple[float, list[PodSample]]]:
        reads = []
        for k in range(1, 13):
            t = 2.0 * k
            warm = pod("new-0", NEW, 20 * min(t, seconds), 0, born=0.0, latency=SLOW)
            # after `seconds`, its requests are fast: cumulative buckets grow only at 0.1+
            fast = 20 * max(0.0, t - seconds)
            buckets = {le: v + fast for le, v in warm.buckets.items()}
            new = PodSample(
                "new-0", NEW, T0, requests=warm.requests + fast, errors=0, buckets=buckets
            )
            reads.append((t, [*old_pods(t), new]))
        return reads

    assert run(*slow_for(5.0)).verdict == Verdict.WATCHING
    # Created at T0 but first answering 8 s later: its warm-up runs from then.
    late = [(t + 8.0, [*old_pods(t + 8.0), *pods[-1:]]) for t, pods in slow_for(5.0)]
    assert run(*late).verdict == Verdict.WATCHING
    judgement = run(*slow_for(60.0))
    assert judgement.verdict == Verdict.BAD and judgement.reason.startswith("new p99 ")


def test_a_new_pod_failing_health_while_old_ones_pass_is_bad() -> None:
    def at(t: float, old_ok: bool) -> list[PodSample]:
        old = [PodSample(p.name, OLD, p.created_at, health_ok=old_ok) for p in old_pods(t)]
        return [*old, PodSample("new-0", NEW, T0, reachable=False, health_ok=False)]

    failing = run((12.0, at(12.0, True)), (14.0, at(14.0, True)))
    assert failing.verdict == Verdict.BAD and "failing /health/full" in failing.reason
    assert run((12.0, at(12.0, False)), (14.0, at(14.0, False))).verdict == Verdict.WATCHING
    alone = [PodSample("new-0", NEW, T0, reachable=False, health_ok=False)]
    assert run((12.0, alone), (14.0, alone)).verdict == Verdict.WATCHING  # nothing to compare
    # In its first 10 s (warm-up) a new pod that does not answer yet is not judged.
    assert run((2.0, at(2.0, True)), (4.0, at(4.0, True))).verdict == Verdict.WATCHING


def test_a_rollout_past_its_progress_deadline_is_stalled() -> None:
    judgement = run((600.0, old_pods(600.0)), deadline=True)
    assert judgement.verdict == Verdict.STALLED


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ((3, 10, 1, 10), 0.29102),  # [[3, 7], [1, 9]]: hypergeometric by hand
        ((0, 10, 5, 10), 1.0),
        ((10, 10, 0, 10), 1 / 184756),
        ((1, 10, 0, 0), 1.0),  # no old requests: nothing to compare with
    ],
)
def test_fisher_exact_one_sided(table: tuple[int, int, int, int], expected: float) -> None:
    assert fisher_greater(*table) == pytest.approx(expected, rel=1e-4)


def test_fisher_handles_large_counts() -> None:
    assert fisher_greater(50, 412, 8, 3950) < 1e-20
    assert 0.3 < fisher_greater(9, 4000, 80, 40000) < 0.6  # 8.1 expected on the new side


def test_p99_interpolates_like_histogram_quantile() -> None:
    buckets = [(0.1, 50.0), (0.5, 100.0), (math.inf, 100.0)]
    assert quantile_from_buckets(0.99, buckets) == pytest.approx(0.492)
    assert quantile_from_buckets(0.99, [(0.1, 0.0), (math.inf, 10.0)]) == 0.1
    assert quantile_from_buckets(0.99, [(math.inf, 0.0)]) is None


@pytest.mark.parametrize(
    ("source", "counted"),
    [(GuardSource.PROMETHEUS, 200.0), (GuardSource.DIRECT, 0.0)],
)
def test_a_new_pods_first_scrape_counts_from_zero_but_a_first_direct_read_does_not(
    source: GuardSource, counted: float
) -> None:
    """A pod born during the watch has series of its own name: its first scrape is a whole
    window. On its IP, what answers first may still be the pod that had the IP before."""
    state = GuardState.begin(T0, NEW)
    pods = (*old_pods(10.0), new_pod(10.0, 0.12, born=0.0, source=source))
    state, _ = advance(state, RolloutRead(T0 + timedelta(seconds=10), NEW, pods), LIMITS)
    assert state.new.requests == counted
    before = pod("old-born", OLD, 200, 0, born=-1.0, source=GuardSource.PROMETHEUS)
    state, _ = advance(GuardState.begin(T0, NEW), RolloutRead(T0, NEW, (before,)), LIMITS)
    assert state.old.requests == 0  # born before the watch: its totals are not the watch's


# Per tenant: five tenants, the last `small` share of the traffic; the new version fails
# `failing` (its 5xx ratio) for that tenant only, the others at 0.1%.
TENANTS = ("t-a", "t-b", "t-c", "t-d", "t-e")


def by_tenant(served: float, small: float, failing: float) -> dict[str, tuple[float, float]]:
    others = served * (1 - small) / 4
    counts = {t: (others, others * 0.001) for t in TENANTS[:4]}
    counts["t-e"] = (served * small, served * small * failing)
    return counts


def tenant_pod(name: str, version: str, served: float, small: float, failing: float,
               born: float) -> PodSample:  # fmt: skip
    tenants = by_tenant(served, small, failing)
    errors = sum(e for _, e in tenants.values())
    return pod(name, version, served, errors, born=born, tenants=tenants)


def tenant_rollout(
    small: float, failing: float, reads: int, limits: GuardLimits = LIMITS
) -> Judgement:
    """Nine old pods, one new; 20 req/s each; reads every 2 s (the first a baseline)."""
    state, judgement = GuardState.begin(T0, NEW), Judgement(Verdict.WATCHING)
    for k in range(1, reads + 1):
        at = 2.0 * k
        pods = [tenant_pod(f"old-{i}", OLD, 50_000 + 20 * at, small, 0.001, -600)
                for i in range(9)]  # fmt: skip
        pods.append(tenant_pod("new-0", NEW, 20 * at, small, failing, 0.0))
        state, judgement = advance(state, RolloutRead(T0 + timedelta(seconds=at), NEW,
                                                      tuple(pods)), limits)  # fmt: skip
    return judgement


@pytest.mark.parametrize(
    ("case", "small", "failing", "reads", "verdict"),
    [
        ("10% tenant failing 30%: 3% overall, caught per tenant", 0.10, 0.30, 12, Verdict.BAD),
        ("the same, too few of its requests yet", 0.10, 0.30, 4, Verdict.WATCHING),
        ("2% tenant failing 30%: under the minimum", 0.02, 0.30, 12, Verdict.WATCHING),
        ("10% tenant at 0.1%, like the others", 0.10, 0.001, 30, Verdict.WATCHING),
        ("10% tenant at 4%: under the 5% limit", 0.10, 0.04, 30, Verdict.WATCHING),
    ],
)
def test_per_tenant_table(
    case: str, small: float, failing: float, reads: int, verdict: Verdict
) -> None:
    assert tenant_rollout(small, failing, reads).verdict == verdict, case


def test_a_tenant_finding_names_the_tenant_and_its_comparison() -> None:
    judgement = tenant_rollout(0.10, 0.30, 12)
    assert judgement.reason.startswith("tenant t-e: new 30.0% 5xx over 44 requests vs old 0.1%")
    assert judgement.reason.endswith("p < 0.001")


def test_no_tenants_followed_is_the_overall_comparison_only() -> None:
    overall = replace(LIMITS, max_tenants=0)
    assert tenant_rollout(0.10, 0.30, 12, overall).verdict == Verdict.WATCHING


def test_tenants_followed_are_bounded() -> None:
    many = {f"t{i:03d}": (float(1000 - i), 0.0) for i in range(500)}
    state = GuardState.begin(T0, NEW)
    for at, served in ((2.0, 1.0), (4.0, 2.0)):
        counts = {t: (r * served, 0.0) for t, (r, _) in many.items()}
        sample = pod("new-0", NEW, 1000.0 * served, 0, born=-600.0, tenants=counts)
        state, _ = advance(state, RolloutRead(T0 + timedelta(seconds=at), NEW, (sample,)), LIMITS)
    assert len(state.new.tenants) == LIMITS.max_tenants == 20
    assert set(state.new.tenants) == {f"t{i:03d}" for i in range(20)}  # the busiest
