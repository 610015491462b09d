"""record: Events only on transitions; status writes only when something changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.test_assess import HEALTHY_METRICS, SPEC, metrics, observe
from venue_operator.assess import assess
from venue_operator.model import Level, VenueServiceStatus
from venue_operator.observations import MetricReadings, Reading
from venue_operator.record import (
    describe,
    next_status,
    transition_events,
    write_causes,
)

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def cycle(status: VenueServiceStatus, obs_metrics: MetricReadings, at: datetime = NOW):
    obs = observe(metrics=obs_metrics)
    a = assess(obs, SPEC, status.checks)
    return a, next_status(a, obs.workload, status, at, 1), transition_events(status, a)


def drive(readings: list[MetricReadings]) -> list[list[str]]:
    status, reasons = VenueServiceStatus(), []
    for i, m in enumerate(readings):
        _, status, events = cycle(status, m, NOW + timedelta(seconds=15 * i))
        reasons.append([e.reason for e in events])
    return reasons


def test_breach_and_recovery_post_one_event_each() -> None:
    bad = metrics(error_rate=Reading.of(0.12))
    reasons = drive([HEALTHY_METRICS] + [bad] * 5 + [HEALTHY_METRICS] * 5)
    flat = [r for cycle_reasons in reasons for r in cycle_reasons]
    assert flat.count("ThresholdBreached") == 1
    assert flat.count("Recovered") == 1
    assert flat.count("SeverityChanged") == 2  # None -> P2 -> None
    assert reasons[3] == ["ThresholdBreached", "SeverityChanged"]  # third bad cycle confirms


def test_steady_state_posts_nothing() -> None:
    reasons = drive([HEALTHY_METRICS] * 10)
    assert all(r == [] for r in reasons)


def test_metrics_unavailable_posts_once() -> None:
    down = Reading.unknown("prometheus query failed: ConnectionError")
    blind = MetricReadings(**dict.fromkeys(
        ["request_rate", "error_rate", "p99_latency", "pool_utilisation", "pool_pending",
         "memory_utilisation", "rate_limited"], down))  # fmt: skip
    flat = [r for rs in drive([HEALTHY_METRICS] + [blind] * 4) for r in rs]
    assert flat.count("MetricsUnavailable") == 1
    assert "ThresholdBreached" not in flat


def test_breach_message_has_the_numbers_and_the_section() -> None:
    status = VenueServiceStatus()
    for _ in range(3):
        a, status, _ = cycle(status, metrics(error_rate=Reading.of(0.12)))
    message = describe(a.check("error_rate"))
    assert message == "error_rate 12% > critical 5% [runbook: Monitoring & Alerts]"


def test_conditions_keep_transition_time_while_unchanged() -> None:
    _, first, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS, NOW)
    _, second, _ = cycle(first, HEALTHY_METRICS, NOW + timedelta(minutes=5))
    healthy = {c.type: c for c in second.conditions}["Healthy"]
    assert healthy.status == "True" and healthy.last_transition_time == NOW


def test_no_write_while_steady_but_a_write_on_change() -> None:
    _, first, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS)
    jitter = metrics(p99_latency=Reading.of(0.16), error_rate=Reading.of(0.0012))
    _, second, _ = cycle(first, jitter, NOW + timedelta(seconds=15))
    assert not write_causes(first, second)
    _, third, _ = cycle(second, metrics(error_rate=Reading.of(0.12)), NOW + timedelta(seconds=30))
    assert {c.name: c for c in third.checks}["error_rate"].pending is Level.CRITICAL
    causes = write_causes(second, third)
    assert {"error_rate.observed", "error_rate.pending", "error_rate.breach"} <= set(causes)


def test_values_alone_never_cause_a_write() -> None:
    _, first, _ = cycle(VenueServiceStatus(), HEALTHY_METRICS)
    _, moved, _ = cycle(
        first, metrics(p99_latency=Reading.of(0.35), pool_utilisation=Reading.of(0.6)), NOW
    )
    assert not write_causes(first, moved), "still ok: nothing to act on, nothing to write"


def test_a_level_held_by_hysteresis_says_it_is_recovering() -> None:
    status = VenueServiceStatus()
    for _ in range(3):
        _, status, _ = cycle(status, metrics(error_rate=Reading.of(0.02)))
    a, status, _ = cycle(status, HEALTHY_METRICS)
    check = a.check("error_rate")
    assert check.level is Level.WARNING and check.observed is Level.OK
    assert describe(check).startswith("error_rate warning, recovering (0.1% now)")
