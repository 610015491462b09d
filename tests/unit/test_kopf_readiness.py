"""kube/kopf_readiness.py: Kopf's readiness gate (a ToggleSet of Kopf's own) wakes its waiters
when its aggregate moves, not at every object indexed, and still releases them then."""

from __future__ import annotations

import asyncio

import pytest
from kopf._cogs.aiokits.aiotoggles import Toggle, ToggleSet

from tests.unit.waiting import eventually
from venue_operator.kube import kopf_readiness

OBJECTS = 2_000


class Counted:
    """`all` over the toggles, counting how often a waiter or a change asks."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, states: object) -> bool:
        self.asked += 1
        return all(states)  # type: ignore[call-overload]


async def worker(gate: ToggleSet, toggle: Toggle, done: list[int]) -> None:
    """As Kopf's worker for one object: indexed (its toggle dropped), then held until all are."""
    await gate.drop_toggle(toggle)
    await gate.wait_for(True)
    done.append(1)


@pytest.fixture(autouse=True)
def installed() -> None:
    kopf_readiness.install()


async def test_indexing_every_object_wakes_the_waiters_once_not_at_each() -> None:
    counted = Counted()
    gate = ToggleSet(counted)
    listed = await gate.make_toggle(name="the list")  # Kopf's: until the kind is listed
    toggles = [await gate.make_toggle(name=str(i)) for i in range(OBJECTS)]
    done: list[int] = []
    workers = []
    for toggle in toggles:  # the watch's events come over time: the loop turns between them
        workers.append(asyncio.create_task(worker(gate, toggle, done)))
        await asyncio.sleep(0)
    await eventually("every object indexed", lambda: len(gate) == 1)
    await eventually("every worker waiting", lambda: len(gate._condition._waiters) == OBJECTS)
    assert done == []  # the list is not done: all still held
    await listed.turn_to(True)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    assert len(done) == OBJECTS
    # linear (a few questions an object), where each drop woke every worker already waiting
    # (N x N / 2: 2,000,000)
    assert counted.asked <= 7 * OBJECTS


async def test_a_new_object_after_readiness_is_still_seen_by_those_waiting_for_off() -> None:
    gate = ToggleSet(all)
    first = await gate.make_toggle(True)
    off = asyncio.create_task(gate.wait_for(False))
    await eventually("waiting", lambda: len(gate._condition._waiters) == 1)
    assert not off.done()
    late = await gate.make_toggle(name="late")  # the aggregate turns off: woken
    await asyncio.wait_for(off, timeout=5)
    on = asyncio.create_task(gate.wait_for(True))
    await gate.drop_toggles([late])
    await asyncio.wait_for(on, timeout=5)
    await first.turn_to(False)  # a toggle turned still wakes, as Kopf's does
    assert gate.is_off()
