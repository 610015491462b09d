"""Shards (#24): which replica owns which VenueService, and when a replica owns nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.waiting import eventually
from venue_operator.fleet import membership as membership_module
from venue_operator.fleet.membership import Membership, RenewalThread
from venue_operator.fleet.shards import Member, live, owner
from venue_operator.kube.status_store import StatusStore, StatusTaken, parse_status
from venue_operator.loop.ownership import Ownership

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEYS = [f"ns-{i % 40}/venue-{i}" for i in range(3000)]


def test_every_service_has_one_owner_and_the_load_is_even() -> None:
    members = ("op-0", "op-1", "op-2", "op-3")
    owners = Counter(owner(key, members) for key in KEYS)
    assert set(owners) == set(members)
    assert max(owners.values()) < 1.15 * len(KEYS) / len(members), owners
    assert owner("ns/a", ()) is None
    assert owner("ns/a", members) == owner("ns/a", tuple(reversed(members)))  # order-free


def test_a_member_leaving_moves_only_its_own_services() -> None:
    before, after = ("op-0", "op-1", "op-2"), ("op-0", "op-2")
    moved = [key for key in KEYS if owner(key, before) != owner(key, after)]
    assert moved and all(owner(key, before) == "op-1" for key in moved)
    joined = ("op-0", "op-1", "op-2", "op-3")
    moved = [key for key in KEYS if owner(key, before) != owner(key, joined)]
    assert all(owner(key, joined) == "op-3" for key in moved)  # only to the newcomer


def test_a_lease_not_renewed_within_its_term_is_not_a_member() -> None:
    term = timedelta(seconds=15)
    members = [Member("op-0", NOW - timedelta(seconds=14), term),
               Member("op-1", NOW - timedelta(seconds=15), term),
               Member("op-2", NOW, term)]  # fmt: skip
    assert live(members, NOW) == ("op-0", "op-2")


def two_replicas(term: timedelta) -> tuple[Membership, Membership]:
    """op-0 and op-1 sharing one list of Leases."""
    leases: list[tuple[str, datetime, timedelta]] = []

    def replica(name: str) -> Membership:
        async def renew(annotations: Mapping[str, str]) -> None:
            leases[:] = [lease for lease in leases if lease[0] != name]
            leases.append((name, datetime.now(UTC), term))

        async def members() -> list[tuple[str, datetime, timedelta]]:
            return list(leases)

        return Membership(name, renew, members, term)

    return replica("op-0"), replica("op-1")


async def test_a_replica_owns_nothing_once_its_own_lease_may_have_lapsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not renewed for two thirds of its term (a busy API server, a pause): it owns nothing
    until it renews again, whatever the members it last read; renewed short of nine tenths
    of the term, nobody else can have run its services: the same epoch. Paused past that
    (SIGSTOP, a partition), its Lease may have expired for the others: it waits, then owns
    in a new epoch, so a cycle begun before the gap does not go on."""
    clock = [1000.0]
    monkeypatch.setattr(membership_module.time, "monotonic", lambda: clock[0])
    renewals: list[float] = []

    async def renew(annotations: Mapping[str, str]) -> None:
        renewals.append(clock[0])

    async def members() -> list[tuple[str, datetime, timedelta]]:
        return [("op-1", datetime.now(UTC), timedelta(seconds=15))]

    async def settle() -> None:
        """Two thirds of a term, renewed on time meanwhile (joined or back: it waits)."""
        for _ in range(2):
            clock[0] += 5
            await mine.tick()

    mine = Membership("op-0", renew, members, timedelta(seconds=15))
    key = next(k for k in KEYS if owner(k, ("op-0", "op-1")) == "op-0")
    assert not mine.owns(key)  # never renewed yet
    await mine.tick()
    assert mine.members == ("op-0", "op-1")
    await settle()
    assert mine.owns(key)
    assert not mine.owns(next(k for k in KEYS if owner(k, ("op-0", "op-1")) == "op-1"))
    epoch = mine.holds(key)
    assert epoch is not None
    assert not mine.renewing()
    clock[0] += 10.5  # two thirds of the term: it may lapse before a write lands
    assert not mine.owns(key) and mine.holds(key) is None
    assert mine.renewing()  # ... and it is not known to have: loops wait, not let go
    await mine.tick()  # 10.5 s after the last: the Lease never expired for the others
    assert mine.holds(key) == epoch and not mine.renewing()
    clock[0] += 13.5  # nine tenths of the term: the others may have taken it over
    assert mine.holds(key) is None
    await mine.tick()
    assert not mine.owns(key)  # back, but the others may still run it: it waits
    await settle()
    # owned again, but in a new epoch: a cycle begun before the gap must not go on
    assert mine.holds(key) == epoch + 1
    await mine.tick()
    assert mine.holds(key) == epoch + 1  # renewed in time, members unchanged: same epoch


async def test_a_late_renewal_holds_the_loop_without_letting_the_service_go() -> None:
    """Its own Lease's renewal late (a saturated API server): no cycle, nothing written,
    and the loop kept; the renewal landing in time goes on in the same epoch with no status
    read again, landing too late (a new epoch) starts from what is stored; a service the hash
    gave another meanwhile is let go. Before, each late renewal let go of every service, and
    taking them all on again cost a status read each and their pods listed again."""
    reads, writes = [], []

    async def read() -> tuple[dict[str, Any], str]:
        reads.append(1)
        return {"health": "Healthy"}, "7"

    async def write(body: dict[str, Any], version: str | None) -> str | None:
        writes.append(body)
        return "8"

    epoch: list[int | None] = [1]
    renewing = [False]
    ownership = Ownership("ns/a", lambda key: epoch[0], read, lambda: renewing[0])
    store = StatusStore(ownership.writes(write), parse_status({"health": "Healthy"}), read, "3")
    assert await ownership.now(store) and len(reads) == 1
    epoch[0], renewing[0] = None, True
    assert not await ownership.now(store) and not ownership.released
    with pytest.raises(StatusTaken):
        await store.save(parse_status({"health": "Degraded"}), "test")
    epoch[0], renewing[0] = 1, False  # landed in time
    assert await ownership.now(store) and len(reads) == 1 and ownership.still()
    epoch[0], renewing[0] = None, True
    assert not await ownership.now(store) and not ownership.released
    epoch[0], renewing[0] = 2, False  # landed past the term: the others may have run it
    assert await ownership.now(store) and len(reads) == 2
    epoch[0] = None  # current, and the hash gives it another member
    assert not await ownership.now(store) and ownership.released
    assert writes == []


async def test_a_joining_replica_takes_nothing_until_the_others_have_let_it_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scale-out: the member that had a service runs it until it renews and lists the newcomer
    (or its own Lease is no longer certain): at most two thirds of a term after the newcomer's
    Lease landed. The newcomer takes it only then, so no moment has two replicas running it
    (the lab saw the breach Events of one service posted by both)."""
    clock = [1000.0]
    monkeypatch.setattr(membership_module.time, "monotonic", lambda: clock[0])
    old, new = two_replicas(timedelta(seconds=15))
    await old.tick()
    key = next(k for k in KEYS if owner(k, ("op-0", "op-1")) == "op-1")
    assert old.owns(key)  # alone: nobody else can be running it
    for _ in range(2):  # renewing every third of the term
        clock[0] += 5
        await old.tick()
    clock[0] += 5
    await new.tick()  # its Lease lands after op-0 listed: op-0 runs the service still
    assert old.owns(key) and not new.owns(key)
    for _ in range(3):
        clock[0] += 5
        assert not (old.owns(key) and new.owns(key)), clock  # op-0's renewal due, not made
        await old.tick()  # lists op-1: lets it go
        await new.tick()
        assert not (old.owns(key) and new.owns(key)), clock
    assert not old.owns(key) and new.owns(key)


async def test_a_cycle_begun_before_a_gap_stops_and_the_next_one_reloads() -> None:
    """Paused mid-cycle past its Lease, the replica renews before the cycle resumes: the
    service is its own again, but in a new epoch; the old cycle may not write, the next one
    starts from what is stored (the CI run that found this saw one stale write, fenced off)."""
    stored = {"health": "Down"}
    reads, writes = [], []

    async def write(body: dict[str, Any], version: str | None) -> str | None:
        writes.append(body)
        return "8"

    async def read() -> tuple[dict[str, Any], str]:
        reads.append(1)
        return stored, "7"

    epoch = [1]
    ownership = Ownership("ns/a", lambda key: epoch[0], read)
    store = StatusStore(ownership.writes(write), parse_status({"health": "Healthy"}), read, "3")
    assert await ownership.now(store) and ownership.still() and len(reads) == 1
    epoch[0] = 2  # lapsed and renewed while the cycle was paused
    assert not ownership.still()
    with pytest.raises(StatusTaken, match="no longer owns"):
        await store.save(parse_status({"health": "Degraded"}), "test")
    assert writes == []
    assert await ownership.now(store) and len(reads) == 2
    assert store.written.health == "Down" and store.resource_version == "7" and ownership.still()
    await store.save(parse_status({"health": "Degraded"}), "test")
    assert writes == [{"health": "Degraded"}]


async def test_a_service_kept_through_a_change_of_members_is_not_taken_on_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change of members moves some services; those it leaves with this replica were run by
    no one else meanwhile: they keep their epoch (no status read, no fresh start), and only a
    lapse of the replica's own Lease starts every one afresh. Each change wakes the services
    waiting for a turn (loop/turns.py)."""
    clock = [1000.0]
    monkeypatch.setattr(membership_module.time, "monotonic", lambda: clock[0])
    old, new = two_replicas(timedelta(seconds=15))
    await old.tick()
    both = ("op-0", "op-1")
    kept = next(k for k in KEYS if owner(k, both) == "op-0")
    moved = next(k for k in KEYS if owner(k, both) == "op-1")
    since = old.holds(kept)
    assert since is not None and old.holds(moved) == since  # alone: both are its own
    waiting = asyncio.ensure_future(old.changed())
    await new.tick()
    assert not waiting.done()
    clock[0] += 5
    await old.tick()  # lists op-1
    await asyncio.wait_for(waiting, 1)  # woken by the change
    assert old.holds(kept) == since and old.holds(moved) is None and old.epoch == since + 1
    clock[0] += 14  # past nine tenths of its term, then renewed: anything may have moved
    await old.tick()
    for _ in range(2):
        clock[0] += 5
        await old.tick()
    assert old.holds(kept) == old.epoch > since


async def test_a_joining_replica_is_woken_when_its_wait_is_over() -> None:
    """A newcomer beside a live member takes nothing for two thirds of a term; the services
    waiting for a turn are woken then, not at their next recount."""
    term = timedelta(seconds=0.3)
    old, new = two_replicas(term)
    await old.tick()
    await new.tick()
    key = next(k for k in KEYS if owner(k, ("op-0", "op-1")) == "op-1")
    assert not new.owns(key)
    started = time.monotonic()
    renewing = [asyncio.create_task(m.run_forever()) for m in (old, new)]  # members unchanged
    try:
        await asyncio.wait_for(new.changed(), 1)
        assert new.owns(key) and time.monotonic() - started >= 0.15
    finally:
        for task in renewing:
            task.cancel()


async def test_a_busy_main_loop_delays_no_renewal_and_loses_no_service() -> None:
    """The renewals are timed and made on a thread of their own: the main loop blocked for
    longer than the Lease (a take-over of hundreds of services on 2 cores) still renews in
    time, so the others never drop this replica, and it keeps its services in the same
    epoch (no status read, no fresh start)."""
    term = timedelta(seconds=0.6)
    renewed: list[float] = []
    leases: list[tuple[str, datetime, timedelta]] = []

    async def renew(annotations: Mapping[str, str]) -> None:
        renewed.append(time.monotonic())
        leases[:] = [("op-0", datetime.now(UTC), term)]

    async def members() -> list[tuple[str, datetime, timedelta]]:
        return list(leases)

    mine = Membership("op-0", renew, members, term, thread=RenewalThread())
    assert mine.thread is not None
    try:
        await mine.tick()
        epoch = mine.holds(KEYS[0])
        assert epoch is not None
        mine.task = asyncio.create_task(mine.run_forever())
        await eventually("renewing on its thread", lambda: len(renewed) >= 3)
        blocked_at = time.monotonic()
        time.sleep(1.0)  # noqa: ASYNC251 - the main loop busy for a term and a half, on purpose
        during = [t for t in renewed if t > blocked_at]
        assert len(during) >= 3, renewed  # every third of a term all the same
        assert mine.holds(KEYS[0]) == epoch  # still current: renewed in time
        await eventually("the renewals made meanwhile applied here",
                         lambda: (mine._renewed_at or 0) > blocked_at)  # fmt: skip
        assert mine.holds(KEYS[0]) == epoch and mine.members == ("op-0",)
    finally:
        if mine.task is not None:
            mine.task.cancel()
        await mine.thread.close()
