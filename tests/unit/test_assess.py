"""assess: every runbook row, boundaries, unknown data, hysteresis and flapping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from tests.unit.builders import HEALTHY_METRICS, ONE_SHOT, SPEC, metrics, observe
from venue_operator.assess.assessment import Assessment, assess
from venue_operator.assess.checks import level_of
from venue_operator.assess.hysteresis import confirm
from venue_operator.model.observations import (
    MetricReadings,
    Observations,
    ProbeFailure,
    ProbeResult,
    Reading,
    WorkloadState,
)
from venue_operator.model.spec import Confirmation, Threshold, VenueServiceSpec
from venue_operator.model.status import CheckStatus, Health, Level, Severity


def run(cycles: Sequence[Observations], spec: VenueServiceSpec = SPEC) -> list[Assessment]:
    previous: tuple[CheckStatus, ...] = ()
    out = []
    for obs in cycles:
        result = assess(obs, spec, previous)
        previous = result.checks
        out.append(result)
    return out


def test_healthy_service() -> None:
    result = assess(observe(), ONE_SHOT)
    assert (result.health, result.severity) == (Health.HEALTHY, Severity.NONE)
    assert all(c.level is Level.OK for c in result.checks), result.checks
    assert result.metrics_available


# Every runbook row: (what happens, observation, check, level, health, severity)
RUNBOOK_ROWS = [
    ("service down: refused", {"health": ProbeResult(ProbeFailure.CONNECTION_REFUSED)},
     "health", Level.CRITICAL, Health.DOWN, Severity.P1),
    ("service down: health times out", {"health": ProbeResult(ProbeFailure.TIMEOUT)},
     "health", Level.CRITICAL, Health.DOWN, Severity.P1),
    ("service down: 503", {"health": ProbeResult(ProbeFailure.HTTP_STATUS, status_code=503)},
     "health", Level.CRITICAL, Health.DOWN, Severity.P1),
    ("malformed health JSON", {"health": ProbeResult(ProbeFailure.INVALID_JSON, status_code=200)},
     "health", Level.CRITICAL, Health.DOWN, Severity.P1),
    ("not starting: no pods ready",
     {"workload": WorkloadState(found=True, desired=3, ready=0, crash_looping=3)},
     "pods", Level.CRITICAL, Health.DOWN, Severity.P1),
    ("crash loop with some pods ready",
     {"workload": WorkloadState(found=True, desired=3, ready=2, crash_looping=1)},
     "pods", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("one pod not ready", {"workload": WorkloadState(found=True, desired=3, ready=2)},
     "pods", Level.WARNING, Health.DEGRADED, Severity.P3),
    ("database down",
     {"full_health": ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503,
                                 checks={"database": "error", "redis": "ok"})},
     "database", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("redis down",
     {"full_health": ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503,
                                 checks={"database": "ok", "redis": "error"})},
     "redis", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("migrations pending",
     {"full_health": ProbeResult(ProbeFailure.CHECK_FAILING, status_code=503, checks={
         "database": "ok", "redis": "ok", "migrations": "pending"})},
     "migrations", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("high error rate", {"metrics": metrics(error_rate=Reading.of(0.12))},
     "error_rate", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("elevated error rate", {"metrics": metrics(error_rate=Reading.of(0.02))},
     "error_rate", Level.WARNING, Health.DEGRADED, Severity.P3),
    ("p99 over 2 s", {"metrics": metrics(p99_latency=Reading.of(2.5))},
     "p99_latency", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("p99 over 500 ms", {"metrics": metrics(p99_latency=Reading.of(0.8))},
     "p99_latency", Level.WARNING, Health.DEGRADED, Severity.P3),
    ("pool saturated", {"metrics": metrics(pool_utilisation=Reading.of(0.95))},
     "pool_utilisation", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("pool busy", {"metrics": metrics(pool_utilisation=Reading.of(0.75))},
     "pool_utilisation", Level.WARNING, Health.DEGRADED, Severity.P3),
    ("memory pressure", {"metrics": metrics(memory_utilisation=Reading.of(0.9))},
     "memory", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("memory high", {"metrics": metrics(memory_utilisation=Reading.of(0.72))},
     "memory", Level.WARNING, Health.DEGRADED, Severity.P3),
    ("429 surge", {"metrics": metrics(rate_limited=Reading.of(0.3),
                                      top_limited_tenants=(("tenant-b", 6.0),))},
     "rate_limited", Level.CRITICAL, Health.DEGRADED, Severity.P2),
    ("some 429s", {"metrics": metrics(rate_limited=Reading.of(0.08))},
     "rate_limited", Level.WARNING, Health.DEGRADED, Severity.P3),
    ("deployment missing", {"workload": WorkloadState(found=False)},
     "pods", Level.UNKNOWN, Health.UNKNOWN, Severity.UNKNOWN),
    ("a timeout the busy operator itself ran late on: not the service's word",
     {"health": ProbeResult(ProbeFailure.OPERATOR_LATE, "ran 1.2s late")},
     "health", Level.UNKNOWN, Health.UNKNOWN, Severity.UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "check", "level", "health", "severity"),
    RUNBOOK_ROWS,
    ids=[row[0] for row in RUNBOOK_ROWS],
)
def test_runbook_rows(
    case: str,
    changes: dict[str, object],
    check: str,
    level: Level,
    health: Health,
    severity: Severity,
) -> None:
    result = assess(observe(**changes), ONE_SHOT)
    assert result.check(check).level is level, result.check(check)
    assert (result.health, result.severity) == (health, severity)


def test_429_reason_names_the_top_tenants() -> None:
    obs = observe(
        metrics=metrics(
            rate_limited=Reading.of(0.3), top_limited_tenants=(("tenant-b", 6.0), ("tenant-a", 0.2))
        )
    )
    reason = assess(obs, ONE_SHOT).check("rate_limited").reason or ""
    assert "tenant-b 6.0/s" in reason and reason.index("tenant-b") < reason.index("tenant-a")


@pytest.mark.parametrize(
    ("value", "level"),
    [(0.99, Level.OK), (1.0, Level.OK), (1.01, Level.WARNING), (5.0, Level.WARNING),
     (5.0001, Level.CRITICAL)],
)  # fmt: skip
def test_exactly_at_a_threshold_does_not_cross_it(value: float, level: Level) -> None:
    assert level_of(value, Threshold(warning=1, critical=5)) is level


def test_error_rate_boundary_through_assess() -> None:
    at_warning = assess(observe(metrics=metrics(error_rate=Reading.of(0.01))), ONE_SHOT)
    assert at_warning.check("error_rate").level is Level.OK
    assert at_warning.check("error_rate").value == 1.0
    at_critical = assess(observe(metrics=metrics(error_rate=Reading.of(0.05))), ONE_SHOT)
    assert at_critical.check("error_rate").level is Level.WARNING


def test_error_rate_not_judged_below_minimum_request_rate() -> None:
    quiet = metrics(request_rate=Reading.of(0.5), error_rate=Reading.of(0.5))
    result = run([observe(metrics=quiet)] * 5)[-1]
    check = result.check("error_rate")
    assert check.level is Level.OK and "not judged" in (check.reason or "")
    assert result.health is Health.HEALTHY


@pytest.mark.parametrize(
    "reading",
    [Reading.unknown("prometheus unreachable"), Reading.unknown("empty result"),
     Reading.unknown("NaN")],
)  # fmt: skip
def test_unknown_metric_is_never_ok_nor_breach(reading: Reading) -> None:
    result = run([observe(metrics=metrics(p99_latency=reading))] * 5)[-1]
    check = result.check("p99_latency")
    assert check.level is Level.UNKNOWN and check.reason == reading.unknown_reason
    assert (result.health, result.severity) == (Health.UNKNOWN, Severity.UNKNOWN)


def test_prometheus_down_means_metrics_unavailable_and_no_breach() -> None:
    down = Reading.unknown("prometheus unreachable")
    blind = MetricReadings(
        request_rate=down, error_rate=down, p99_latency=down, pool_utilisation=down,
        pool_pending=down, memory_utilisation=down, rate_limited=down,
    )  # fmt: skip
    result = run([observe(metrics=blind)] * 5)[-1]
    assert not result.metrics_available
    assert result.breaches() == []


def test_breach_needs_consecutive_confirmations() -> None:
    bad = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    levels = [a.check("error_rate").level for a in run([bad] * 4)]
    assert levels == [Level.OK, Level.OK, Level.CRITICAL, Level.CRITICAL]


def test_two_cycle_blip_does_not_breach() -> None:
    good, bad = observe(), observe(metrics=metrics(error_rate=Reading.of(0.12)))
    results = run([good, bad, bad, good, bad, bad, good, good])
    assert all(not r.breaches() for r in results)
    assert {r.health for r in results} == {Health.HEALTHY}


def test_recovery_needs_consecutive_passes() -> None:
    good, bad = observe(), observe(metrics=metrics(error_rate=Reading.of(0.12)))
    results = run([bad, bad, bad, good, good, good])
    assert [r.health for r in results] == [Health.HEALTHY] * 2 + [Health.DEGRADED] * 3 + [
        Health.HEALTHY
    ]


def test_a_breach_streak_mostly_critical_confirms_critical() -> None:
    """critical, warning, critical: three cycles in breach, two critical, the latest too."""
    warn = observe(metrics=metrics(error_rate=Reading.of(0.02)))
    crit = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    assert run([crit, warn, crit])[-1].check("error_rate").level is Level.CRITICAL


def test_a_dip_to_warning_after_two_criticals_confirms_critical() -> None:
    """critical, critical, warning: a 12% error rate over ~80 requests can read 3.75% once."""
    warn = observe(metrics=metrics(error_rate=Reading.of(0.0375)))
    crit = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    check = run([crit, crit, warn])[-1].check("error_rate")
    assert (check.level, check.observed) == (Level.CRITICAL, Level.WARNING)


@pytest.mark.parametrize(
    "sequence",
    [
        "wwc",  # a lone critical spike after warnings
        "wcw",  # one critical in three
        "cwoc",  # an ok sample ends the breach
        "cc",  # too short a breach
    ],
)
def test_critical_needs_most_of_a_breach_streak(sequence: str) -> None:
    by_letter = {
        "o": observe(),
        "w": observe(metrics=metrics(error_rate=Reading.of(0.02))),
        "c": observe(metrics=metrics(error_rate=Reading.of(0.12))),
    }
    levels = [a.check("error_rate").level for a in run([by_letter[c] for c in sequence])]
    assert Level.CRITICAL not in levels


def test_unknown_interrupts_a_streak() -> None:
    bad = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    gap = observe(metrics=metrics(error_rate=Reading.unknown("prometheus unreachable")))
    levels = [a.check("error_rate").level for a in run([bad, bad, gap, bad, bad])]
    assert Level.CRITICAL not in levels


def test_hysteresis_state_survives_a_round_trip_through_status() -> None:
    """The operator stores checks in status; the streak must survive that serialisation."""
    bad = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    first = assess(bad, SPEC)
    stored = [
        CheckStatus.model_validate(c.model_dump(mode="json", by_alias=True)) for c in first.checks
    ]
    second = assess(bad, SPEC, stored)
    third = assess(bad, SPEC, second.checks)
    assert second.check("error_rate").pending_count == 2
    assert third.check("error_rate").level is Level.CRITICAL


C, W, O, U = Level.CRITICAL, Level.WARNING, Level.OK, Level.UNKNOWN  # noqa: E741


@pytest.mark.parametrize(
    ("previous", "observed", "expected"),
    [
        # (level, pending, count, last_known) -> observed -> (level, pending, count, last_known)
        pytest.param((O, None, 0, None), O, (O, None, 0, None), id="steady ok"),
        pytest.param((O, None, 0, None), C, (O, C, 1, None), id="breach starts a streak"),
        pytest.param((O, C, 2, None), C, (C, None, 0, None), id="third breach confirms"),
        pytest.param((C, None, 0, None), O, (C, O, 1, None), id="recovery starts a streak"),
        pytest.param((C, O, 2, None), O, (O, None, 0, None), id="third pass recovers"),
        pytest.param((C, O, 2, None), C, (C, None, 0, None), id="relapse ends the recovery"),
        # Unknown is confirmed like any other level...
        pytest.param((C, None, 0, None), U, (C, U, 1, None), id="one gap changes nothing"),
        pytest.param((C, U, 2, None), U, (U, None, 0, C), id="third gap: unknown, remembers"),
        pytest.param((O, U, 2, None), O, (O, None, 0, None), id="a flicker to unknown is gone"),
        pytest.param((O, C, 2, None), U, (O, U, 1, None), id="a gap breaks a breach streak"),
        pytest.param((U, None, 0, C), U, (U, None, 0, C), id="still unknown, still remembers"),
        # ...a check back from unknown resumes from its last known breach...
        pytest.param((U, None, 0, C), C, (C, None, 0, None), id="back critical: critical"),
        pytest.param((U, None, 0, C), O, (C, O, 1, None), id="back ok: must recover first"),
        # ...and from a healthy past (or none) stays unknown until a streak confirms (#21)
        pytest.param((U, None, 0, O), O, (U, O, 1, O), id="back ok from ok: not yet ok"),
        pytest.param((U, O, 2, O), O, (O, None, 0, None), id="third ok: ok"),
        pytest.param((U, None, 0, O), C, (U, C, 1, O), id="back bad from ok: a streak"),
        pytest.param((U, C, 1, O), W, (U, W, 2, O), id="a breach streak keeps its mildest"),
        pytest.param((U, W, 2, O), C, (W, None, 0, None), id="third breach: warning"),
        pytest.param((U, C, 2, O), O, (U, O, 1, O), id="ok breaks a breach streak"),
        pytest.param((U, O, 2, O), U, (U, None, 0, O), id="a gap breaks it too"),
        pytest.param((U, None, 0, None), O, (U, O, 1, None), id="never known: not yet ok"),
        pytest.param((U, None, 0, None), C, (U, C, 1, None), id="never known, bad: a streak"),
    ],
)
def test_confirm_table(
    previous: tuple[Level, Level | None, int, Level | None],
    observed: Level,
    expected: tuple[Level, Level | None, int, Level | None],
) -> None:
    level, pending, count, last_known = previous
    stored = CheckStatus(
        name="x", level=level, pending=pending, pending_count=count, last_known=last_known,
        section="s",
    )  # fmt: skip
    got = confirm(observed, stored, Confirmation(breaches=3, recoveries=3))
    assert (got.level, got.pending, got.count, got.last_known) == expected


def test_first_sight_unknown_is_unknown_at_once() -> None:
    assert confirm(Level.UNKNOWN, None, Confirmation()).level is Level.UNKNOWN


def test_a_metrics_gap_does_not_call_a_broken_service_healthy() -> None:
    """#10 case 2: critical error rate, Prometheus gone long enough to confirm unknown, then
    one reading: the check resumes critical, health never reads Healthy in between."""
    bad = observe(metrics=metrics(error_rate=Reading.of(0.225)))
    gap = observe(
        metrics=replace(
            HEALTHY_METRICS,
            **dict.fromkeys(
                (
                    "request_rate",
                    "error_rate",
                    "p99_latency",
                    "pool_utilisation",
                    "pool_pending",
                    "memory_utilisation",
                    "rate_limited",
                ),
                Reading.unknown("prometheus unreachable"),
            ),
        )
    )
    healthy = observe()
    results = run([bad] * 3 + [gap] * 4 + [bad, healthy, healthy])  # fmt: skip
    healths = [r.health for r in results]
    assert healths[:3] == [Health.HEALTHY, Health.HEALTHY, Health.DEGRADED]
    assert Health.UNKNOWN in healths[3:7]
    assert healths[7:] == [Health.DEGRADED] * 3, healths  # resumed; recovering takes 3 cycles
    assert results[7].check("error_rate").level is Level.CRITICAL


def test_after_a_gap_one_good_reading_calls_nothing_healthy() -> None:
    """#21: healthy, Prometheus gone long enough to confirm unknown, a bad release rolled out
    meanwhile whose first reading (a rate window still spanning the gap) looks fine: Unknown
    until the readings confirm, never Healthy on the way to Degraded."""
    names = ("request_rate", "error_rate", "p99_latency", "pool_utilisation", "pool_pending",
             "memory_utilisation", "rate_limited")  # fmt: skip
    gone = Reading.unknown("prometheus unreachable")
    gap = observe(metrics=replace(HEALTHY_METRICS, **dict.fromkeys(names, gone)))
    bad = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    results = run([observe()] * 3 + [gap] * 4 + [observe(), bad, bad, bad, bad])
    healths = [r.health for r in results]
    assert healths[6:8] == [Health.UNKNOWN, Health.UNKNOWN], healths
    assert Health.HEALTHY not in healths[6:], healths
    assert healths[-1] is Health.DEGRADED
    # and a good service is Healthy again once `recoveries` readings say so
    back = [r.health for r in run([observe()] * 3 + [gap] * 4 + [observe()] * 4)]
    assert back[7:] == [Health.UNKNOWN, Health.UNKNOWN, Health.HEALTHY, Health.HEALTHY], back


def test_unknown_flicker_changes_neither_health_nor_severity() -> None:
    """#10 case 9: every other cycle unknown (too little traffic, a lost scrape)."""
    flick = observe(metrics=metrics(p99_latency=Reading.unknown("query returned NaN")))
    results = run([observe(), flick] * 10)
    assert {(r.health, r.severity) for r in results} == {(Health.HEALTHY, Severity.NONE)}


def test_low_traffic_judges_neither_latency_nor_rate_limits() -> None:
    """Below minRequestRate a quantile or share over a handful of requests means nothing,
    and over none it is missing: not judged (ok), so an idle service can be Healthy."""
    idle = observe(metrics=metrics(
        request_rate=Reading.of(0), error_rate=Reading.unknown("no requests in the rate window"),
        p99_latency=Reading.unknown("query returned NaN"),
        rate_limited=Reading.unknown("no requests in the rate window")))  # fmt: skip
    result = assess(idle, ONE_SHOT)
    assert result.health is Health.HEALTHY
    for name in ("error_rate", "p99_latency", "rate_limited"):
        assert result.check(name).level is Level.OK
        assert (result.check(name).reason or "").startswith("not judged"), name


def test_a_long_check_value_is_cut_where_the_reason_is_made() -> None:
    """A 2,000-character database error must not make the status invalid."""
    full = ProbeResult(status_code=200, checks={"database": "x" * 2000, "redis": "ok"})
    reason = assess(observe(full_health=full), ONE_SHOT).check("database").reason
    assert reason is not None and len(reason) <= 1000 and reason.endswith("…")


def test_a_ramp_confirms_critical_within_one_streak() -> None:
    """warning, critical, critical: the rate ramped through its window; critical at once."""
    warn = observe(metrics=metrics(error_rate=Reading.of(0.02)))
    crit = observe(metrics=metrics(error_rate=Reading.of(0.12)))
    levels = [a.check("error_rate").level for a in run([warn, crit, crit])]
    assert levels == [Level.OK, Level.OK, Level.CRITICAL]


def test_an_idle_service_with_no_request_series_is_judged_idle_not_blind() -> None:
    """Never served a request: no http_requests_total series, other series scraped."""
    none = Reading.unknown('no series for {namespace="n",service="s"}')
    nan = Reading.unknown("query returned NaN")
    idle = observe(metrics=metrics(request_rate=none, requests_served=none, error_rate=none,
                                   rate_limited=none, p99_latency=nan))  # fmt: skip
    assert assess(idle, ONE_SHOT).health is Health.HEALTHY
    blind = observe(metrics=metrics(request_rate=none, requests_served=none,
                                    memory_utilisation=none, p99_latency=nan))  # fmt: skip
    assert assess(blind, ONE_SHOT).check("error_rate").level is Level.UNKNOWN
    # Just after a Prometheus restart the rate has no series yet, but the counter has one.
    fresh = observe(metrics=metrics(request_rate=none, requests_served=Reading.of(5000),
                                    p99_latency=nan))  # fmt: skip
    assert assess(fresh, ONE_SHOT).check("error_rate").level is Level.UNKNOWN


def test_sustained_pending_connections_are_pool_exhaustion() -> None:
    """Runbook "Database Connection Failures": the diagnosis is db_pool_pending."""
    waiting = observe(metrics=metrics(pool_pending=Reading.of(8)))
    results = run([waiting] * 3)
    check = results[-1].check("pool_pending")
    assert (check.level, check.section) == (Level.CRITICAL, "Database Connection Failures")
    assert results[-1].severity is Severity.P2
    assert assess(observe(metrics=metrics(pool_pending=Reading.of(2))), ONE_SHOT).check(
        "pool_pending").level is Level.WARNING  # fmt: skip
