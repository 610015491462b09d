"""#22 item 1: the fleet storm rule (decide/storm.py), the board that feeds it
(fleet/board.py), what decide() holds, and the watch that says it once for the fleet
(fleet/storm_watch.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.unit.builders import metrics
from tests.unit.test_decide import ERRORS, FRESH_ROLLOUT, KNOWN, OLD_ROLLOUT, POLICY, SLOW, assessed
from tests.unit.test_decide import NOW as DECIDE_NOW
from venue_operator.decide.decision import Action
from venue_operator.decide.procedure import decide
from venue_operator.decide.storm import Report, Storm, StormRule, Tally, explaining
from venue_operator.fleet.board import FleetBoard
from venue_operator.fleet.storm_watch import FleetWatch
from venue_operator.model.observations import Reading
from venue_operator.model.reasons import Reason
from venue_operator.record.transitions import EventSpec

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
RULE = StormRule()  # 5 services, 30%, 3 namespaces, 60 s


def storms(reports: list[Report], rule: StormRule, now: datetime) -> tuple[Storm, ...]:
    """Every storm at `now` over these reports (the board keeps its Tally as they come)."""
    tally = Tally(rule)
    for report in reports:
        tally.put((report.namespace, report.name), report, now)
    return tally.storms(now)


def fleet(*groups: tuple[str, int, int], dep: str | None = None,
          ago: float = 0) -> list[Report]:  # fmt: skip
    """(namespace, services, of them breaching p99_latency `ago` seconds ago)."""
    out = []
    for namespace, services, breaching in groups:
        for i in range(services):
            hit = {"p99_latency": NOW - timedelta(seconds=ago)} if i < breaching else {}
            out.append(Report(namespace, f"svc-{i}", frozenset({dep} if dep else ()), NOW, hit))
    return out


# (case, reports, expected storms as (scope, breaching, services))
TABLE = [
    ("one namespace, 5 of 10: a storm", fleet(("shop", 10, 5)),
     [("namespace shop", 5, 10)]),
    ("4 breaching: too few, whatever the share", fleet(("shop", 4, 4)), []),
    ("5 of 20 is under 30%", fleet(("shop", 20, 5)), []),
    ("6 of 20 is 30%", fleet(("shop", 20, 6)), [("namespace shop", 6, 20)]),
    ("breached 59 s ago still counts", fleet(("shop", 10, 5), ago=59),
     [("namespace shop", 5, 10)]),
    ("breached 61 s ago no longer does", fleet(("shop", 10, 5), ago=61), []),
    # across namespaces: each namespace is one voice
    ("one tenant's 10 broken services hold nobody elsewhere",
     fleet(("evil", 10, 10), ("a", 3, 1), ("b", 3, 0), ("c", 3, 0)),
     [("namespace evil", 10, 10)]),
    ("2 of 2 namespaces: fewer than 3 voices",
     fleet(("a", 4, 3), ("b", 4, 3)), []),
    ("3 of 4 namespaces, 6 services: a cluster storm",
     fleet(("a", 3, 2), ("b", 3, 2), ("c", 3, 2), ("d", 3, 0)),
     [("cluster", 6, 12)]),
    ("3 of 12 namespaces is under 30%",
     fleet(("a", 3, 2), ("b", 3, 2), ("c", 3, 2), *((f"n{i}", 1, 0) for i in range(9))), []),
    ("a shared dependency across 3 namespaces",
     [*fleet(("a", 3, 2), ("b", 3, 2), ("c", 3, 2), dep="orders-db"),
      *fleet(("a", 0, 0), *((f"n{i}", 1, 0) for i in range(9)))],
     [("dependency orders-db", 6, 9)]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "reports", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_storm_rule(case: str, reports: list[Report], expected: list[tuple[str, int, int]]) -> None:
    found = storms(reports, RULE, NOW)
    assert [(s.scope, s.breaching, s.services) for s in found] == expected
    assert {s.check for s in found} <= {"p99_latency"}


def test_no_storm_guard_at_zero_and_services_not_seen_within_the_window_are_out() -> None:
    assert storms(fleet(("shop", 10, 10)), StormRule(min_services=0), NOW) == ()
    stale = [Report(r.namespace, r.name, r.depends_on, NOW - timedelta(minutes=5), r.breached)
             for r in fleet(("shop", 10, 10))]  # fmt: skip
    assert storms(stale, RULE, NOW) == ()


def test_a_storm_explains_a_breach_only_when_every_critical_check_is_storming() -> None:
    latency = Storm("namespace shop", "p99_latency", 6, 10)
    assert explaining([latency], ["p99_latency"]) == latency
    assert explaining([latency], ["p99_latency", "error_rate"]) is None  # a cause of its own
    assert explaining([latency], []) is None
    bigger = Storm("cluster", "p99_latency", 9, 30, (4, 5))
    assert explaining([latency, bigger], ["p99_latency"]) == bigger
    assert bigger.describe() == ("9 of 30 services in 4 of 5 namespaces breaching p99_latency "
                                 "together (cluster)")  # fmt: skip


STORM = Storm("namespace shop", "p99_latency", 14, 30)
ERROR_STORM = Storm("namespace shop", "error_rate", 14, 30)


def test_decide_holds_the_scale_up_a_storm_explains_without_escalating() -> None:
    alone = decide(assessed(**SLOW), OLD_ROLLOUT, KNOWN, POLICY, DECIDE_NOW)
    assert alone.action is Action.SCALE_UP and alone.suppressed_by is None
    held = decide(assessed(**SLOW), OLD_ROLLOUT, KNOWN, POLICY, DECIDE_NOW, storms=[STORM])
    assert held.action is Action.SCALE_UP and held.suppressed_by == "storm"
    assert "held: 14 of 30 services breaching p99_latency together (namespace shop)" in (
        held.reason
    )
    # another check storming explains nothing here
    other = decide(assessed(**SLOW), OLD_ROLLOUT, KNOWN, POLICY, DECIDE_NOW,
                   storms=[ERROR_STORM])  # fmt: skip
    assert other.suppressed_by is None


def test_decide_holds_a_service_wide_rollback_in_an_error_storm() -> None:
    held = decide(assessed(**ERRORS), FRESH_ROLLOUT, KNOWN, POLICY, DECIDE_NOW,
                  storms=[ERROR_STORM])  # fmt: skip
    assert held.action is Action.ROLL_BACK and held.suppressed_by == "storm"


def test_an_escalation_is_never_held_by_a_storm() -> None:
    """Nothing to automate (errors, no recent rollout): the escalation still goes out."""
    decision = decide(assessed(**ERRORS), OLD_ROLLOUT, KNOWN, POLICY, DECIDE_NOW,
                      storms=[ERROR_STORM])  # fmt: skip
    assert decision.action is Action.ESCALATE and decision.suppressed_by is None


def test_the_board_keeps_a_breach_for_the_window_after_it_recovered() -> None:
    board = FleetBoard(RULE)
    for i in range(5):
        board.report("shop", f"s{i}", (), ["p99_latency"], NOW)
    board.report("shop", "quiet", (), [], NOW)
    (storm,) = board.around("shop", (), NOW)
    assert (storm.breaching, storm.services) == (5, 6)
    later = NOW + timedelta(seconds=30)
    for i in range(5):  # all recovered: they count until the window has passed
        board.report("shop", f"s{i}", (), [], later)
    assert board.storms(later)[0].breaching == 5
    after = NOW + timedelta(seconds=61)
    assert board.storms(after) == ()
    assert board.around("elsewhere", (), NOW) == ()  # only the service's own scopes
    board.forget("shop", "quiet")
    assert board.storms(NOW + timedelta(seconds=62)) == ()


def storm_series() -> float | None:
    labels = {"scope": "namespace shop", "check": "p99_latency"}
    return REGISTRY.get_sample_value("venue_operator_fleet_storm", labels)


def storming() -> tuple[FleetBoard, FleetWatch, list[tuple[EventSpec, str]], list[datetime]]:
    """A watch over 6 of 6 services of shop breaching p99 at NOW; what it posts; its clock."""
    board, posted, clock = FleetBoard(RULE), [], [NOW]

    async def post(event: EventSpec, key: str) -> bool:
        posted.append((event, key))
        return True

    watch = FleetWatch(board, post, clock=lambda: clock[0])
    for i in range(6):
        board.report("shop", f"s{i}", (), ["p99_latency"], NOW)
    return board, watch, posted, clock


async def test_the_watch_says_a_storm_once_when_it_starts_and_when_it_ends() -> None:
    _, watch, posted, clock = storming()
    await watch.tick()
    await watch.tick()
    assert [e.reason for e, _ in posted] == [Reason.FLEET_STORM]
    assert "6 of 6 services breaching p99_latency together (namespace shop)" in posted[0][0].message
    assert storm_series() == 6
    clock[0] = NOW + timedelta(seconds=61)  # gone from the board: not over yet
    await watch.tick()
    assert [e.reason for e, _ in posted] == [Reason.FLEET_STORM]
    assert storm_series() == 6
    clock[0] = NOW + timedelta(seconds=71)  # gone for the quiet 10 s: over
    await watch.tick()
    assert [e.reason for e, _ in posted] == [Reason.FLEET_STORM, Reason.FLEET_STORM_OVER]
    assert posted[0][0].type == "Warning" and posted[1][0].type == "Normal"
    assert posted[0][1] == posted[1][1]  # one storm, one key: said once each way
    assert storm_series() is None  # the series is gone, not 0


def test_the_fifth_service_to_breach_sees_the_storm_it_makes_within_the_same_second() -> None:
    board = FleetBoard(RULE)
    for i in range(10):
        board.report("shop", f"s{i}", (), [], NOW)
    assert board.around("shop", (), NOW) == ()
    seen = []
    for i in range(6):  # one after another, as their cycles come
        board.report("shop", f"s{i}", (), ["p99_latency"], NOW + timedelta(milliseconds=i))
        seen.append(len(board.around("shop", (), NOW + timedelta(milliseconds=i))))
    assert seen == [0, 0, 0, 0, 1, 1]


def test_a_scale_up_is_explained_by_the_capacity_checks_it_scales_for() -> None:
    """A check of its own beside a p99 storm (here its error rate; under load, a probe timing
    out) does not make the scale-up the service's own: more pods are what the storm's shared
    cause does not need."""
    observed = assessed(metrics=metrics(p99_latency=Reading.of(2.6), error_rate=Reading.of(0.12)))
    alone = decide(observed, OLD_ROLLOUT, KNOWN, POLICY, DECIDE_NOW)
    assert alone.action is Action.SCALE_UP
    held = decide(observed, OLD_ROLLOUT, KNOWN, POLICY, DECIDE_NOW, storms=[STORM])
    assert held.action is Action.SCALE_UP and held.suppressed_by == "storm"


async def test_a_storm_gone_for_a_tick_or_two_is_the_same_storm() -> None:
    """A busy operator's late cycles let breaches age out of the window for a moment: that is
    no new storm, and no FleetStormOver."""
    board, watch, posted, clock = storming()
    await watch.tick()
    clock[0] = NOW + timedelta(seconds=61)  # aged out of the 60 s window
    await watch.tick()
    for i in range(6):  # their next cycles, late
        board.report("shop", f"s{i}", (), ["p99_latency"], clock[0] + timedelta(seconds=4))
    clock[0] += timedelta(seconds=6)
    await watch.tick()
    assert [e.reason for e, _ in posted] == [Reason.FLEET_STORM]
