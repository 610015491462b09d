"""impact and incidents: what an incident costs, how long it took, what status keeps. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.builders import SPEC, metrics, observe
from venue_operator.assess.assessment import Assessment, assess
from venue_operator.decide.decision import Action, Decision
from venue_operator.incident import bookkeeping
from venue_operator.incident.impact import (
    MAX_STEP,
    assess_impact,
    magnitude,
    summary,
    with_impact_line,
)
from venue_operator.loop.evaluation import judge
from venue_operator.model.observations import MetricReadings, Reading, TenantRate
from venue_operator.model.status import (
    IMPACT_TENANTS,
    INCIDENTS_KEPT,
    Impact,
    Incident,
    IncidentEntry,
    Severity,
    TenantImpact,
    VenueServiceStatus,
)
from venue_operator.record import ledger
from venue_operator.record.write_causes import write_causes

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
CALM = assess(observe(), SPEC, [])
WARNING = 1.0  # the error-rate warning threshold, percent


def readings(rps: float | None, error_share: float | None, *tenants: TenantRate) -> MetricReadings:
    rate = Reading.unknown("down") if rps is None else Reading.of(rps)
    share = Reading.unknown("down") if error_share is None else Reading.of(error_share)
    return replace(metrics(request_rate=rate, error_rate=share), tenants=tenants)


def step(
    previous: Impact | None, m: MetricReadings, seconds: float, a: Assessment = CALM
) -> Impact:
    last = previous.updated_at if previous else T0
    return assess_impact(previous, T0, m, a, WARNING, last + timedelta(seconds=seconds))


def test_failed_requests_are_the_failing_rate_integrated_over_time() -> None:
    first = step(None, readings(20, 0.1), 10)  # 2/s for 10 s (no rate before: one side)
    second = step(first, readings(20, 0.2), 10)  # 2/s -> 4/s: trapezoid, 30
    assert (first.failed_requests, second.failed_requests) == (20, 50)
    assert (second.request_rate, second.failing_rate) == (20, 4)


@pytest.mark.parametrize(
    ("case", "m"),
    [
        ("no traffic", readings(0, None)),
        ("metrics unknown", readings(None, None)),
        ("a counter reset read as a negative rate", readings(-5, 0.5)),
        ("NaN", readings(float("nan"), 0.5)),
    ],
)
def test_nothing_usable_adds_nothing_and_never_lowers_the_totals(
    case: str, m: MetricReadings
) -> None:
    tenant = TenantImpact(tenant="a", failed_requests=40, affected=True)
    before = Impact(updated_at=T0, failed_requests=40, failing_rate=None, top_tenants=[tenant])
    after = step(before, m, 15)
    assert after.failed_requests == 40, case
    assert after.failing_rate is None
    assert after.top_tenants == before.top_tenants


def test_a_long_gap_is_not_extrapolated_from_the_rate_before_it() -> None:
    before = step(None, readings(10, 1.0), 0)  # 10/s failing
    after = step(before, readings(10, 0.1), 3600)  # an hour without a reading, then 1/s
    assert after.failed_requests == pytest.approx(MAX_STEP.total_seconds() * 1)


def test_tenants_are_ranked_by_failed_requests_not_traffic_and_bounded() -> None:
    many = [TenantRate(f"t{i}", 10.0, 0.1 * i) for i in range(8)]
    hit = TenantRate("small-but-hit", 2.0, 1.0)  # 50% errors on little traffic
    impact = step(None, readings(100, 0.02, hit, *many), 10)
    assert [t.tenant for t in impact.top_tenants][:2] == ["small-but-hit", "t7"]
    assert len(impact.top_tenants) == IMPACT_TENANTS
    lead = impact.top_tenants[0]
    assert (lead.failed_requests, lead.error_percent, lead.affected) == (10, 50, True)
    # above the 1% warning share: small-but-hit (50%), t2 .. t7 (2% .. 7%)
    assert impact.tenants_affected == 7


def test_a_tenant_keeps_its_total_and_affected_mark_after_it_recovers() -> None:
    first = step(None, readings(10, 0.5, TenantRate("a", 10, 5)), 10)
    later = step(first, readings(10, 0.0, TenantRate("a", 10, 0)), 10)
    (a,) = later.top_tenants
    assert (a.failed_requests, a.error_percent, a.affected) == (50, 50, True)  # its peak
    assert later.tenants_affected == 1


def test_a_tenant_that_never_failed_is_not_listed() -> None:
    impact = step(None, readings(10, 0.5, TenantRate("a", 5, 5), TenantRate("idle", 5, 0)), 5)
    assert [t.tenant for t in impact.top_tenants] == ["a"]


def test_a_tenant_without_a_request_rate_has_no_share() -> None:
    impact = step(None, readings(10, 0.5, TenantRate("a", None, 2)), 5)
    assert impact.top_tenants[0].error_percent is None and impact.tenants_affected == 0


def test_tenant_names_are_bounded() -> None:
    impact = step(None, readings(10, 0.5, TenantRate("x" * 500, 10, 5)), 5)
    assert len(impact.top_tenants[0].tenant) == 64


@pytest.mark.parametrize(
    ("count", "bucket"), [(0, 0), (0.9, 0), (1, 1), (9.9, 1), (10, 2), (999, 3)]
)
def test_magnitude(count: float, bucket: int) -> None:
    assert magnitude(count) == bucket


def test_the_summary_names_numbers_and_tenants() -> None:
    impact = step(None, readings(20, 0.2, TenantRate("tenant-b", 5, 2.5)), 10)
    text = summary(impact)
    assert text.startswith("~40 failed requests (failing 4/s of 20/s, peak 4/s)")
    assert "tenant-b ~25 (50%)" in text and "1 tenant(s)" in text
    status = VenueServiceStatus(incident=Incident(id="i", opened_at=T0, severity=Severity.P2,
                                                  impact=impact))  # fmt: skip
    line = with_impact_line("error_rate not recovered", status)
    assert line == f"error_rate not recovered; impact: {text}"
    assert with_impact_line(line, status) == line  # said once


def _drive(shares: list[float], tenants: bool = True) -> list[VenueServiceStatus]:
    """Cycles of 15 s through judge (assess + record + impact), as the loop runs them."""
    status, out = VenueServiceStatus(), []
    for i, share in enumerate(shares):
        rate = (
            TenantRate("tenant-b", 5, 5 * share * 2),
            TenantRate("tenant-a", 15, 15 * share / 2),
        )
        m = readings(20, share, *(rate if tenants else ()))
        obs = observe(metrics=m, at=T0 + timedelta(seconds=15 * i))
        status = judge(obs, SPEC, status, 1).status
        out.append(status)
    return out


def test_impact_writes_status_and_timeline_only_when_it_changes_materially() -> None:
    statuses = _drive([0.001] + [0.12] * 12)
    opened = next(i for i, s in enumerate(statuses) if s.incident)
    assert opened == 3  # three breaching cycles confirm (the spec's default)
    incident = statuses[-1].incident
    assert incident is not None and incident.impact is not None
    # began: the first breaching cycle, two intervals before the third confirmed it
    assert incident.began_at == T0 + timedelta(seconds=15)
    assert incident.impact.top_tenants[0].tenant == "tenant-b"
    assert incident.impact.checks == ["error_rate"]
    writes = [
        bool(write_causes(a, b))
        for a, b in zip(statuses[opened:], statuses[opened + 1 :], strict=False)
    ]
    lines = [e.message for e in incident.timeline if e.message.startswith("impact:")]
    # ~2.4 failing/s from the first breach: 72 at opening (a line, with the opening's write),
    # then 108 (>= 100: a line and a write), then no further order of magnitude in 9 cycles
    assert len(lines) == 2 and sum(writes) == 1
    assert "tenant-b" in lines[0]


def test_no_tenant_series_still_gives_a_service_wide_impact() -> None:
    incident = _drive([0.12] * 6, tenants=False)[-1].incident
    assert incident is not None and incident.impact is not None
    assert incident.impact.failed_requests > 0 and incident.impact.top_tenants == []


def _incident(i: int, began: int = 0, mitigated: int | None = 20, resolved: int = 60) -> Incident:
    at = T0 + timedelta(hours=i)
    return Incident(
        id=f"inc-{i}", opened_at=at + timedelta(seconds=10), severity=Severity.P2,
        began_at=at + timedelta(seconds=began), resolved_at=at + timedelta(seconds=resolved),
        mitigated_at=None if mitigated is None else at + timedelta(seconds=mitigated),
        timeline=[IncidentEntry(at=at, severity=Severity.P2, message="m" * 2000)] * 100,
        pages=["SeverityChanged:P2"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("began", "mitigated", "expected"),
    [
        (0, 20, ("10s", "20s", "1m")),
        (None, 20, ("0s", "10s", "50s")),  # no first breach recorded: from the opening
        (0, None, ("10s", None, "1m")),  # recovered without an action
    ],
)
def test_ttd_ttm_ttr(
    began: int | None, mitigated: int | None, expected: tuple[str | None, ...]
) -> None:
    incident = _incident(0, mitigated=mitigated)
    if began is None:
        incident = incident.model_copy(update={"began_at": None})
    settled = bookkeeping.settle(incident)
    assert (settled.time_to_detect, settled.time_to_mitigate, settled.time_to_recover) == expected
    still_open = bookkeeping.settle(incident.model_copy(update={"resolved_at": None}))
    assert still_open.time_to_recover is None


def test_the_first_succeeded_workload_action_marks_mitigation() -> None:
    status = VenueServiceStatus(incident=Incident(id="i", opened_at=T0, severity=Severity.P2))
    status, _ = ledger.announced(status, Decision(Action.ESCALATE, "r", "s"), T0, "e")
    assert status.incident is not None
    assert status.incident.mitigated_at is None  # telling humans mitigates nothing
    later = T0 + timedelta(seconds=30)
    status, roll = ledger.started(status, Decision(Action.ROLL_BACK, "r", "s"), later, "r")
    status = ledger.succeeded(status, roll)
    scale = roll.model_copy(update={"at": later + timedelta(seconds=30), "correlation_id": "x"})
    status = ledger.succeeded(status, scale)
    assert status.incident is not None and status.incident.mitigated_at == later


def test_the_last_resolved_incidents_are_kept_compacted_and_found() -> None:
    status = VenueServiceStatus()
    for i in range(INCIDENTS_KEPT + 3):
        kept = bookkeeping.archive(status, _incident(i))  # a new incident opens
        status = status.model_copy(update={"incidents": kept, "incident": _incident(i)})
    kept = status.incidents
    assert [i.id for i in kept] == [f"inc-{n}" for n in range(2, 7)]
    assert all(len(i.timeline) == 30 and len(i.timeline[0].message) == 500 for i in kept)
    assert all(i.pages == [] and i.time_to_recover == "1m" for i in kept)
    size = sum(len(i.model_dump_json(by_alias=True)) for i in kept)
    assert size < 100_000  # well under etcd's 1.5 MB, whatever the incidents held
    assert bookkeeping.find(status, "inc-2") == kept[0]
    assert bookkeeping.find(status, None) == status.incident
    assert bookkeeping.find(status, "inc-0") is None


def test_the_next_incident_archives_the_resolved_one_through_record() -> None:
    statuses = _drive([0.12] * 5 + [0.001] * 5 + [0.12] * 5)
    last = statuses[-1]
    assert last.incident is not None and len(last.incidents) == 1
    (old,) = last.incidents
    assert old.id != last.incident.id and old.time_to_recover is not None
    assert old.impact is not None and old.impact.failed_requests > 0


def test_every_page_carries_the_impact() -> None:
    from venue_operator.model.reasons import Reason
    from venue_operator.paging.webhook import payload
    from venue_operator.record import outbox
    from venue_operator.record.transitions import EventSpec

    impact = step(None, readings(20, 0.2, TenantRate("tenant-b", 5, 2.5)), 10)
    status = VenueServiceStatus(severity=Severity.P2, incident=Incident(
        id="i", opened_at=T0, severity=Severity.P2, impact=impact))  # fmt: skip
    event = EventSpec("Warning", Reason.SEVERITY_CHANGED, "None -> P2")
    (page,) = outbox.on_severity(status, "ns/v", event, T0).outbox
    body = payload("Slack", "https://hooks.example/x", "ns/v", page)
    assert body["text"].startswith("[P2] ns/v: SeverityChanged: None -> P2; impact: ~40 failed")
    assert (body["dedup_key"], body["event_action"], body["incident"]) == ("ns/v/i", "trigger", "i")
