"""#21 item 8: words an on-call reads, each saying what happened: no Warning while a
successful action takes effect, a severity change that names what moved it, the operator's
own rollback named as its own after a restart, conditions that agree with their messages,
"no rollout" only when there was none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.builders import ONE_SHOT, metrics, observe
from tests.unit.test_service_loop import Crash, World, bad_rollout, healthy_with_known_good
from venue_operator.assess.assessment import assess
from venue_operator.decide.procedure import decide
from venue_operator.decide.rollout import RolloutFacts
from venue_operator.model.observations import Reading, WorkloadState
from venue_operator.model.reasons import Reason
from venue_operator.model.remediation import RemediationPolicy
from venue_operator.model.status import VenueServiceStatus
from venue_operator.model.wording import fmt, rounded
from venue_operator.record.transitions import conditions, severity_change

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


async def test_no_warning_while_a_successful_rollback_takes_effect() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 6)  # rolled back; the metrics stay bad while it takes effect
    assert world.events.reasons().count(Reason.ROLLED_BACK) == 1
    warnings = [e for _, e in world.events.posted if e.reason is Reason.REMEDIATION_HELD]
    assert warnings == [], warnings


def test_a_severity_change_names_what_moved_it() -> None:
    warning = assess(observe(metrics=metrics(error_rate=Reading.of(0.03))), ONE_SHOT)
    critical = assess(observe(metrics=metrics(error_rate=Reading.of(0.12))), ONE_SHOT)
    before = VenueServiceStatus(health=warning.health, severity=warning.severity,
                                checks=list(warning.checks))  # fmt: skip
    said = severity_change(before, critical)
    assert said == "P3 -> P2 (still Degraded): error_rate warning -> critical", said


async def test_after_a_restart_its_own_rollback_is_named_as_its_own() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    world.acts.crash_after_next = True
    with pytest.raises(Crash):
        await world.cycles(loop, 5)
    await world.cycles(world.loop(), 1)
    said = [e.message for _, e in world.events.posted if e.reason is Reason.ROLLED_BACK]
    assert said and all("our own write, made before the operator restarted" in m for m in said)


def test_metrics_available_lists_only_metrics_as_unknown() -> None:
    unread = WorkloadState(found=False, unreadable="deployments is forbidden")
    a = assess(observe(workload=unread), ONE_SHOT)  # pods unknown, the metrics known
    (metrics_condition,) = [c for c in conditions(a, [], NOW, 1) if c.type == "MetricsAvailable"]
    assert metrics_condition.status == "True"
    assert "pods" not in metrics_condition.message, metrics_condition.message


def test_no_rollout_is_said_only_when_there_was_none() -> None:
    a = assess(observe(metrics=metrics(error_rate=Reading.of(0.12))), ONE_SHOT)
    unread = RolloutFacts(current=None, unreadable="deployments is forbidden")
    said = decide(a, unread, VenueServiceStatus(), RemediationPolicy(), NOW).reason
    assert "the rollout could not be read (deployments is forbidden)" in said
    assert "no rollout" not in said
    none = decide(a, RolloutFacts(current=None), VenueServiceStatus(), RemediationPolicy(), NOW)
    assert "with no rollout" in none.reason


def test_figures_stored_for_people_are_the_figures_shown() -> None:
    """Impact figures are stored rounded (kubectl describe) as fmt shows them: three
    significant digits below 1,000, whole numbers above; never e-notation."""
    assert [rounded(v) for v in (19.934, 0.0012345, 12345.6)] == [19.9, 0.00123, 12346.0]
    assert [fmt(v, "ms") for v in (999.6, 19.934, 12345.6)] == ["1000ms", "19.9ms", "12346ms"]
