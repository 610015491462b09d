"""The storm rule's counts kept as reports come and go (decide/storm.py's Tally): the same
storms as counting the fleet from scratch at every ask, for a report's own scopes and checks'
worth of work (at 5,000 services flapping, counting from scratch was 41% of a replica)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from venue_operator.decide import storm as storm_rule
from venue_operator.decide.storm import Key, Report, Storm, StormRule, Tally, scopes_of

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
RULE = StormRule(min_services=3, min_fraction=0.3, min_namespaces=2,
                 window=timedelta(seconds=60))  # fmt: skip
CHECKS = ("p99_latency", "error_rate", "health")


def from_scratch(reports: Iterable[Report], rule: StormRule, now: datetime) -> tuple[Storm, ...]:
    """The rule as written (docs/fleet.md), every service counted at `now`: the reference."""
    inside: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
    for report in reports:
        if now - report.at <= rule.window:
            recent = frozenset(c for c, t in report.breached.items() if now - t <= rule.window)
            for scope in scopes_of(report.namespace, report.depends_on):
                inside[scope].append((report.namespace, recent))
    found = []
    for scope, seen in sorted(inside.items()):
        for check in sorted({c for _, breaching in seen for c in breaching}):
            voices = [ns for ns, breaching in seen if check in breaching]
            if len(voices) < rule.min_services or len(voices) < rule.min_fraction * len(seen):
                continue
            if scope.startswith("namespace "):
                found.append(Storm(scope, check, len(voices), len(seen)))
                continue
            namespaces = (len(set(voices)), len({ns for ns, _ in seen}))
            if namespaces[0] < rule.min_namespaces or (
                namespaces[0] < rule.min_fraction * namespaces[1]
            ):
                continue
            found.append(Storm(scope, check, len(voices), len(seen), namespaces))
    return tuple(found)


@pytest.mark.parametrize("seed", range(12))
def test_the_tally_finds_what_counting_from_scratch_finds_at_every_step(seed: int) -> None:
    """Services of 5 namespaces (some naming one of 2 dependencies) report, breach, recover,
    move dependencies, go quiet (out of the window) and go; time runs 0-9 s a step."""
    rng = random.Random(seed)
    tally, latest, now = Tally(RULE), dict[Key, Report](), NOW
    keys = [(f"ns{rng.randrange(5)}", f"s{i}") for i in range(40)]
    storms_seen = 0
    for _ in range(600):
        now += timedelta(seconds=rng.uniform(0, 9))
        key = rng.choice(keys)
        if rng.random() < 0.05:
            latest.pop(key, None)
            tally.drop(key)
        elif rng.random() < 0.9:  # a cycle: its checks critical now, earlier breaches kept
            before = latest.get(key)
            breached = dict(before.breached) if before else {}
            breached.update({c: now for c in CHECKS if rng.random() < 0.35})
            deps = frozenset(d for d in ("orders-db", "cache") if rng.random() < 0.4)
            latest[key] = Report(*key, deps, now, breached)
            tally.put(key, latest[key], now)
        found = from_scratch(latest.values(), RULE, now)
        assert tally.storms(now) == found
        namespace, deps = key[0], latest[key].depends_on if key in latest else frozenset()
        mine = scopes_of(namespace, deps)
        assert tally.around(mine, now) == tuple(s for s in found if s.scope in mine)
        storms_seen += len(found)
    assert storms_seen > 100  # the walk did storm, often


def test_a_quiet_fleet_leaves_the_window_by_itself() -> None:
    tally = Tally(RULE)
    for i in range(4):
        tally.put(("shop", f"s{i}"), Report("shop", f"s{i}", frozenset(), NOW,
                                            {"health": NOW}), NOW)  # fmt: skip
    assert [s.scope for s in tally.storms(NOW + timedelta(seconds=60))] == ["namespace shop"]
    assert tally.storms(NOW + timedelta(seconds=60, microseconds=1)) == ()


def test_one_report_in_a_fleet_of_5000_re_judges_its_own_scopes_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """5,000 services over 50 namespaces, 2,500 of them breaching: a service flapping in and
    out of breach re-judges the checks of its 3 scopes, whatever the fleet's size."""
    tally = Tally(StormRule())
    for i in range(5000):
        key = (f"ns{i % 50}", f"s{i}")
        breached = {"p99_latency": NOW} if i % 2 else {}
        tally.put(key, Report(*key, frozenset({"orders-db"}), NOW, breached), NOW)
    before = {s.key: s.breaching for s in tally.storms(NOW)}
    assert before[("cluster", "p99_latency")] == 2500
    judged: list[tuple[str, str]] = []
    judge = storm_rule._judged
    monkeypatch.setattr(storm_rule, "_judged", lambda scope, check, *rest: (
        judged.append((scope, check)) or judge(scope, check, *rest)))  # fmt: skip
    key = ("ns2", "s2")
    for step in range(1, 21):  # breach, recover (kept the window), leave, come back
        at = NOW + timedelta(seconds=step)
        breached = {"error_rate": at} if step % 2 else {}
        if step % 5 == 0:
            tally.drop(key)
        else:
            tally.put(key, Report(*key, frozenset({"orders-db"}), at, breached), at)
        tally.storms(at)
    assert 0 < len(judged) <= 20 * 3 * 2  # 20 reports x 3 scopes x (its check, p99's)
    after = {s.key: s.breaching for s in tally.storms(NOW + timedelta(seconds=21))}
    assert after == before  # ended out of the fleet for a moment and back, not breaching
