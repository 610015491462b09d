"""#24 item 5: the storm guard and the fleet-wide rate count the whole fleet across shards
(fleet/exchange.py, fleet/summary.py, fleet/board.py's merge, fleet/rate.py's ShardedRate),
through the Leases each replica renews anyway."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from tests.unit.test_service_loop import NS, World, bad_rollout, healthy_with_known_good
from venue_operator.decide.storm import StormRule
from venue_operator.fleet.board import FleetBoard
from venue_operator.fleet.exchange import FleetExchange
from venue_operator.fleet.membership import Membership
from venue_operator.fleet.rate import ShardedRate
from venue_operator.fleet.shards import Member, owner
from venue_operator.fleet.storm_watch import FleetWatch
from venue_operator.fleet.summary import (
    ANNOTATION,
    MAX_BYTES,
    MAX_REPORTS,
    Breaches,
    Summary,
    encode,
    parse,
)
from venue_operator.kube import leases
from venue_operator.model.reasons import Reason
from venue_operator.record.transitions import EventSpec

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
RULE = StormRule()  # 5 services, 30%, 3 namespaces, 60 s
SHARDS = ("op-0", "op-1", "op-2", "op-3")
# 40 services naming orders-db in 8 namespaces; 16 of them breach p99 (2 per namespace)
FLEET = [(f"ns-{i % 8}", f"svc-{i}") for i in range(40)]
BREACHING = {(ns, name) for ns, name in FLEET if int(name[4:]) < 16}


def boards() -> dict[str, FleetBoard]:
    """Each shard's board after one round of cycles: its own services reported, the others'
    only present (its loops for them skip: another shard runs them)."""
    out = {}
    for me in SHARDS:
        board = FleetBoard(RULE)
        for ns, name in FLEET:
            if owner(f"{ns}/{name}", SHARDS) == me:
                critical = ["p99_latency"] if (ns, name) in BREACHING else []
                board.report(ns, name, ["orders-db"], critical, NOW)
            else:
                board.present(ns, name, ["orders-db"], NOW)
        out[me] = board
    return out


def exchange_round(shards: dict[str, FleetBoard], live: tuple[str, ...]) -> None:
    published = {me: board.published(NOW) for me, board in shards.items()}
    for me in live:
        others = {m: published[m] for m in live if m != me}
        shards[me].merge(others, len(live), NOW)


def test_alone_each_shard_sees_a_small_outage_and_together_they_see_the_storm() -> None:
    shards = boards()
    alone = [len(b.storms(NOW)) for b in shards.values()]
    assert alone == [0, 0, 0, 0]  # 16 breaching over 4 shards: 4 small ones, no storm
    exchange_round(shards, SHARDS)
    for board in shards.values():
        (storm,) = [s for s in board.storms(NOW) if s.scope == "dependency orders-db"]
        assert (storm.breaching, storm.services, storm.namespaces) == (16, 40, (8, 8))
        assert storm.shards == 4
        assert storm.describe().endswith("(dependency orders-db; counted across 4 shards)")


def test_a_member_no_longer_live_counts_no_more_and_each_round_replaces_the_last() -> None:
    shards = boards()
    exchange_round(shards, SHARDS)
    assert shards["op-0"].storms(NOW)
    # op-1..op-3 gone (their Leases lapsed): op-0 is back to its own breaches
    shards["op-0"].merge({}, 1, NOW)
    assert shards["op-0"].storms(NOW) == ()
    # a member that says its services recovered replaces what it said before
    exchange_round(shards, SHARDS)
    shards["op-0"].merge({m: [] for m in SHARDS[1:]}, 4, NOW)
    assert shards["op-0"].storms(NOW) == ()


def test_the_latest_word_on_a_service_counts_once() -> None:
    """During a takeover two members may publish one service: it counts once, by the latest
    cycle; a service only present here takes the owner's word; one this replica runs keeps
    its own while it is newer; one it does not know (not yet watched) is not counted."""
    board = FleetBoard(StormRule(min_services=2, min_fraction=0.5, min_namespaces=1))
    board.present("shop", "a", (), NOW)
    board.report("shop", "b", (), [], NOW)
    earlier = Breaches("shop", "a", NOW - timedelta(seconds=20), {"p99_latency": NOW})
    later = Breaches("shop", "a", NOW - timedelta(seconds=5), {})
    b_before = Breaches("shop", "b", NOW - timedelta(seconds=5), {"p99_latency": NOW})
    stranger = Breaches("shop", "unknown", NOW, {"p99_latency": NOW})
    board.merge({"op-1": [earlier, b_before, stranger], "op-2": [later]}, 3, NOW)
    assert board.storms(NOW) == ()  # a: recovered (op-2's later word); b: its own, newer
    board.merge({"op-1": [earlier, b_before, stranger]}, 2, NOW)
    assert board.storms(NOW) == ()  # a breaching, b its own, the stranger not counted
    b_after = Breaches("shop", "b", NOW + timedelta(seconds=5), {"p99_latency": NOW})
    board.merge({"op-1": [earlier, b_after]}, 2, NOW)
    storm = board.storms(NOW)[0]  # b taken over by op-1, which saw it breach
    assert (storm.scope, storm.breaching, storm.services, storm.shards) == ("cluster", 2, 2, 2)


def test_the_published_breaches_are_its_own_within_the_window_most_recent_first() -> None:
    board = FleetBoard(RULE)
    board.report("shop", "old", (), ["p99_latency"], NOW - timedelta(seconds=50))
    board.report("shop", "new", (), ["error_rate"], NOW - timedelta(seconds=10))
    board.report("shop", "calm", (), [], NOW)
    board.report("shop", "gone", (), ["p99_latency"], NOW - timedelta(seconds=61))
    board.present("shop", "theirs", (), NOW)
    published = board.published(NOW)
    assert [b.name for b in published] == ["new", "old"]
    assert published[0].breached == {"error_rate": NOW - timedelta(seconds=10)}


def test_a_summary_reads_back_as_written_within_its_bounds() -> None:
    reports = [Breaches("shop", f"svc-{i}", NOW - timedelta(seconds=i),
                        {"p99_latency": NOW - timedelta(seconds=i)}) for i in range(3)]  # fmt: skip
    text, left_out = encode(reports, (7, 3), 10)
    assert left_out == 0
    assert parse(text) == Summary(tuple(reports), (3, 7), 10)
    many = [Breaches("n" * 63, f"{i:0>253}", NOW, {"p99_latency": NOW}) for i in range(300)]
    text, left_out = encode(many, (), 10)
    kept = len(parse(text).reports)
    assert len(text) <= MAX_BYTES + 100 and kept + left_out == 300 and kept < MAX_REPORTS
    assert parse(text).reports[0] == many[0]  # the first (most recent) are the ones kept
    short = [Breaches("ns", f"svc-{i}", NOW, {"p99_latency": NOW}) for i in range(300)]
    assert encode(short, (), 10)[1] == 300 - MAX_REPORTS


GOOD = json.loads(encode([Breaches("shop", "a", NOW, {"p99_latency": NOW})], (1,), 10)[0])
MALFORMED = [
    ("not JSON", "{"),
    ("not an object", "[]"),
    ("another version", json.dumps({**GOOD, "v": 2})),
    ("a negative rate", json.dumps({**GOOD, "perMinute": -1})),
    ("a rate that is a bool", json.dumps({**GOOD, "perMinute": True})),
    ("slots that are not ints", json.dumps({**GOOD, "spent": ["1"]})),
    ("too many reports", json.dumps({**GOOD, "reports": [GOOD["reports"][0]] * 201})),
    ("a short report", json.dumps({**GOOD, "reports": [["shop", "a", 1.0]]})),
    ("an empty name", json.dumps({**GOOD, "reports": [["shop", "", 1.0, {}]]})),
    ("a namespace too long", json.dumps({**GOOD, "reports": [["n" * 64, "a", 1.0, {}]]})),
    ("a time that is not finite", '{"v":1,"perMinute":1,"spent":[],'
                                  '"reports":[["shop","a",NaN,{}]]}'),
    ("a time out of range", json.dumps({**GOOD, "reports": [["shop", "a", 1e12, {}]]})),
    ("breaches not a map", json.dumps({**GOOD, "reports": [["shop", "a", 1.0, []]]})),
    ("too many checks", json.dumps({**GOOD, "reports": [
        ["shop", "a", 1.0, {f"c{i}": 1.0 for i in range(17)}]]})),
    ("too big", json.dumps({**GOOD, "pad": "x" * 4 * MAX_BYTES})),
    ("nested too deep", "[" * 100_000),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_summary_is_refused_whole(case: str, text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def lease(name: str, text: str | None, renewed: datetime | None = None) -> Member:
    annotations = {} if text is None else {ANNOTATION: text}
    return Member(name, renewed or datetime.now(UTC), timedelta(seconds=15), annotations)


def test_the_exchange_merges_the_live_members_and_skips_a_malformed_one() -> None:
    board = FleetBoard(RULE)
    for i in range(6):
        board.present("shop", f"s{i}", (), NOW)
    rate = ShardedRate(10, "op-0", lambda: ("op-0", "op-1", "op-2"), clock=lambda: 600.0)
    exchange = FleetExchange("op-0", board, rate, clock=lambda: NOW)
    breaching = [Breaches("shop", f"s{i}", NOW, {"p99_latency": NOW}) for i in range(6)]
    good, _ = encode(breaching[:3], (99,), 10)
    other, _ = encode(breaching[3:], (), 10)
    listed = [lease("op-0", "{}"), lease("op-1", good), lease("op-2", "{oops"),
              lease("op-3", other), lease("op-4", None)]  # fmt: skip
    with structlog.testing.capture_logs() as logged:
        exchange.receive(listed, ("op-0", "op-1", "op-2"))  # op-3: listed, not live
        exchange.receive(listed, ("op-0", "op-1", "op-2"))
    assert board.shards == 3 and board.storms(NOW) == ()  # 3 breaching: op-1's only
    assert rate._theirs == {99}  # op-1's spent slot
    unreadable = [e for e in logged if e["event"] == "fleet.summary_unreadable"]
    assert [e["member"] for e in unreadable] == ["op-2"]  # said once, not every renewal
    exchange.receive([*listed[:3], lease("op-3", other)], ("op-0", "op-1", "op-2", "op-3"))
    (storm,) = board.storms(NOW)
    assert (storm.breaching, storm.services, storm.shards) == (6, 6, 4)
    published = json.loads(exchange.publish()[ANNOTATION])
    assert published["perMinute"] == 10 and published["reports"] == []


async def test_the_summary_rides_on_the_renewal_and_a_failing_exchange_never_stops_it() -> None:
    renewed: list[Mapping[str, str]] = []

    async def renew(annotations: Mapping[str, str]) -> None:
        renewed.append(annotations)

    async def members() -> list[tuple[Any, ...]]:
        return [("op-0", datetime.now(UTC), timedelta(seconds=15), {ANNOTATION: "{}"}),
                ("op-1", datetime.now(UTC), timedelta(seconds=15))]  # fmt: skip

    class Broken:
        def publish(self) -> dict[str, str]:
            raise RuntimeError("a bug")

        def receive(self, listed: Any, live: Any) -> None:
            raise RuntimeError("a bug")

    board = FleetBoard(RULE)
    membership = Membership("op-0", renew, members, timedelta(seconds=15),
                            FleetExchange("op-0", board, None))  # fmt: skip
    await membership.tick()
    assert ANNOTATION in renewed[-1] and board.shards == 2
    membership.exchange = Broken()
    await membership.tick()  # renewed all the same, without the summary
    assert renewed[-1] == {} and membership.current()


def test_the_shards_split_the_fleet_rate_and_never_spend_more_than_it() -> None:
    """Four members taking as fast as they can for ten minutes take what one bucket would
    give (a minute's burst, then the rate), each about a quarter, however they interleave."""
    now = [1_000_000.0]
    rates = [ShardedRate(10, m, lambda: SHARDS, clock=lambda: now[0]) for m in SHARDS]
    taken: list[tuple[float, str]] = []
    rng = random.Random(7)
    for _ in range(6000):
        now[0] += 0.1
        rate = rng.choice(rates)
        if rate.take():
            taken.append((now[0], rate.me))
    assert len(taken) <= 10 + 10 * 10  # one bucket's burst + ten minutes' refill
    for start, _ in taken:  # any minute: at most the fleet's burst plus one refill
        assert sum(1 for t, _ in taken if start <= t < start + 60) <= 20
    counts = {m: sum(1 for _, who in taken if who == m) for m in SHARDS}
    assert all(20 <= n <= 32 for n in counts.values()), counts
    assert "split across 4 shards (this replica's share: one slot in 4, 2.5 a minute)" in (
        rates[0].describe()
    )


def test_fewer_actions_a_minute_than_shards_still_gives_each_its_turn() -> None:
    now = [1_000_000.0]
    rates = [ShardedRate(2, m, lambda: SHARDS, clock=lambda: now[0]) for m in SHARDS]
    got = set()
    for _ in range(240):  # four minutes, every second
        now[0] += 1
        got.update(r.me for r in rates if r.take())
    assert got == set(SHARDS)


def test_after_the_members_change_a_slot_another_spent_is_not_spent_again() -> None:
    now = [1_000_020.0]
    before, after = ("op-0", "op-1"), ("op-0", "op-1", "op-2")
    members = {"op-0": before, "op-1": before, "op-2": after}
    rates = {m: ShardedRate(6, m, lambda m=m: members[m], clock=lambda: now[0])
             for m in members}  # fmt: skip
    while rates["op-0"].take() or rates["op-1"].take():
        pass
    spent = {m: rates[m].spent() for m in ("op-0", "op-1")}
    assert sum(map(len, spent.values())) == 6  # the fleet's minute, split between two
    members.update({"op-0": after, "op-1": after})  # op-2 joins: the slots move
    for m in rates:
        for other in ("op-0", "op-1"):
            if other != m:
                rates[m].seen(spent[other], 6)
    assert not any(r.take() for r in rates.values())  # every slot of the minute is spent
    other_rate = ShardedRate(12, "op-0", lambda: ("op-0",), clock=lambda: now[0])
    other_rate.seen(spent["op-1"], 6)  # a member at another rate: its slots mean other times
    assert other_rate.take()


async def test_the_rate_held_message_says_it_was_split_across_the_shards() -> None:
    rate = ShardedRate(1, "op-1", lambda: ("op-0", "op-1"), clock=lambda: 0.0)
    world = World(fleet=rate)
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 8)
    escalated = [e for _, e in world.events.posted if e.reason is Reason.ESCALATED]
    assert world.acts.calls == [] and len(escalated) == 1  # the one slot is op-0's
    message = escalated[0].message
    assert "fleet-wide rate of 1 actions a minute, split across 2 shards" in message


async def test_only_the_member_the_hash_gives_a_storm_to_posts_its_events() -> None:
    board = FleetBoard(RULE)
    for i in range(6):
        board.report("shop", f"s{i}", (), ["p99_latency"], NOW)
    posted: list[str] = []

    async def post(event: EventSpec, key: str) -> bool:
        posted.append(key)
        return True

    key = "storm/namespace shop/p99_latency"
    mine = FleetWatch(board, post, clock=lambda: NOW, announces=lambda k: k == key)
    theirs = FleetWatch(board, post, clock=lambda: NOW, announces=lambda k: False)
    await theirs.tick()
    assert posted == [] and theirs.active  # seen, not said
    await mine.tick()
    assert len(posted) == 1 and posted[0].startswith(key)


async def test_a_lease_carries_the_annotations_in_its_renewal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, str, Any]] = []
    answers: list[Any] = [leases.ApiError(status=404), {}, {}]

    async def request(api: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        sent.append((method, path, kwargs))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    monkeypatch.setattr(leases, "request", request)
    await leases.renew(None, "ops", "op-0", timedelta(seconds=15), {ANNOTATION: "{}"})
    (patch, create) = sent
    assert patch[:2] == ("PATCH", "/apis/coordination.k8s.io/v1/namespaces/ops/leases/op-0")
    assert patch[2]["body"]["metadata"] == {"annotations": {ANNOTATION: "{}"}}
    assert create[:2] == ("POST", "/apis/coordination.k8s.io/v1/namespaces/ops/leases")
    assert create[2]["body"]["metadata"]["annotations"] == {ANNOTATION: "{}"}
    await leases.renew(None, "ops", "op-0", timedelta(seconds=15))
    assert "metadata" not in sent[-1][2]["body"]  # without --shards' fleet view: as before
    answers.append({"items": [
        {"metadata": {"annotations": {ANNOTATION: "{}"}},
         "spec": {"holderIdentity": "op-1", "renewTime": "2026-12-06T09:00:00.000000Z",
                  "leaseDurationSeconds": 15}},
        {"metadata": {}, "spec": {"holderIdentity": "op-2"}},  # never renewed: left out
    ]})  # fmt: skip
    (listed,) = await leases.members(None, "ops")
    assert listed == ("op-1", NOW, timedelta(seconds=15), {ANNOTATION: "{}"})
    assert sent[-1][2]["query"] == {"labelSelector": f"{leases.SHARD_LABEL}=member"}


async def test_a_loop_whose_service_another_shard_runs_still_counts_it_on_the_board() -> None:
    """Its cycles skip, but the service is one of its scopes' services here: the storm rule's
    shares are of the whole fleet, whichever shard runs each service."""
    world, epoch = World(fenced=True), [1]
    loop = world.loop(owns=lambda key: epoch[0])
    board = FleetBoard(StormRule(min_services=1, min_fraction=0.5, min_namespaces=1))
    loop.ports = replace(loop.ports, board=board)
    await world.cycles(loop, 2)  # its own: reported by its cycles, healthy
    epoch[0] = None  # taken by another shard, which says another service there breached
    await world.cycles(loop, 1)
    board.merge(
        {"op-1": [Breaches(NS, "other", world.now, {"p99_latency": world.now})]}, 2, world.now
    )
    board.present(NS, "other", (), world.now)
    assert board.published(world.now) == []  # not its to publish
    (storm,) = [s for s in board.storms(world.now) if s.scope == f"namespace {NS}"]
    assert (storm.breaching, storm.services) == (1, 2)  # `other`, of it and the loop's
